"""SWORD Bible modules in the zText format (``ot.*`` / ``nt.*`` files of a module directory).

* ``.bzs``: one 12-byte little-endian record per compressed block: offset in ``.bzz``, compressed size,
  uncompressed size;
* ``.bzv``: one 10-byte record per index entry: block number (u32), offset in the uncompressed block
  (u32), size (u16);
* ``.bzz``: the zlib-compressed blocks.

Index entries follow the versification: entries 0 and 1 are module and testament headers, then each book
has one heading entry followed, per chapter, by one chapter heading entry and one entry per verse. In OSIS
modules the heading entries carry the ``<div type="book" osisID=...>`` and ``<chapter osisID=...>``
milestones, which is how books and chapters are found here; the totals are checked against the expected
numbers of books and chapters, so a module with another layout is reported, not misaligned.
"""

from __future__ import annotations

import html
import re
import struct
import zlib

from taskscout.errors import CatalogError

# KJV versification: (books, chapters) per testament.
KJV_SHAPE = {"ot": (39, 929), "nt": (27, 260)}
_BOOK = re.compile(rb'<div\b[^>]*\btype="book"[^>]*\bsID=|<div\b[^>]*\bsID=[^>]*\btype="book"')
_CHAPTER = re.compile(rb'<chapter\b[^>]*\bsID="[^"]*"[^>]*\bn="?(\d+)|<chapter\b[^>]*\bn="(\d+)"[^>]*\bsID=')
_NOTE = re.compile(r"<note\b.*?</note>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def read_ztext_testament(
    bzs: bytes, bzv: bytes, bzz: bytes, label: str, expected: tuple[int, int] | None = None
) -> dict[tuple[int, int, int], str]:
    """``(book within the testament 1.., chapter, verse) -> raw OSIS text`` of one testament."""
    if len(bzs) % 12 or len(bzv) % 10 or len(bzv) < 20:
        raise CatalogError(f"{label}: index sizes {len(bzs)} / {len(bzv)} are not zText .bzs / .bzv files")
    blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs), 12)]
    cache: dict[int, bytes] = {}

    def entry(k: int) -> bytes:
        block, offset, size = struct.unpack_from("<IIH", bzv, 10 * k)
        if size == 0:
            return b""
        if block >= len(blocks):
            raise CatalogError(f"{label}: entry {k} points to block {block} of {len(blocks)}")
        if block not in cache:
            start, csize, usize = blocks[block]
            try:
                cache[block] = zlib.decompress(bzz[start : start + csize])
            except zlib.error as exc:
                raise CatalogError(f"{label}: block {block} does not decompress ({exc})") from exc
            if len(cache[block]) != usize:
                raise CatalogError(f"{label}: block {block} has the wrong size; the module is damaged")
        return cache[block][offset : offset + size]

    verses: dict[tuple[int, int, int], str] = {}
    book = chapter = verse = 0
    chapters = 0
    for k in range(2, len(bzv) // 10):
        raw = entry(k)
        if _BOOK.search(raw) and not _CHAPTER.search(raw):
            book, chapter, verse = book + 1, 0, 0
            continue
        match = _CHAPTER.search(raw)
        if match and (verse > 0 or chapter == 0):
            chapter, verse = int(match.group(1) or match.group(2)), 0
            chapters += 1
            continue
        if book == 0 or chapter == 0:
            raise CatalogError(f"{label}: entry {k} is a verse before any book or chapter heading")
        verse += 1
        verses[(book, chapter, verse)] = raw.decode("utf-8", "replace")
    if expected is not None and (book, chapters) != expected:
        raise CatalogError(
            f"{label}: found {book} books and {chapters} chapters, expected {expected[0]} and {expected[1]}; "
            "the module does not have the expected versification"
        )
    return verses


def osis_to_text(markup: str) -> str:
    """Plain text of an OSIS verse: notes dropped, tags removed, entities decoded, pilcrows removed."""
    text = _TAG.sub("", _NOTE.sub(" ", markup))
    return " ".join(html.unescape(text).replace("\u00b6", " ").split())
