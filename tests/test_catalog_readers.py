"""Tests of the file-format readers in taskscout.data.readers and of the builders that use them, on tiny
fixtures written here: R serializations (a minimal XDR writer below), SWORD zText modules, Orange .tab."""

from __future__ import annotations

import gzip
import io
import lzma
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from taskscout.data import builders as B
from taskscout.data.readers.r_data import read_lazyload, read_rda
from taskscout.data.readers.sword import osis_to_text, read_ztext_testament
from taskscout.errors import CatalogError


# ====================================================================== a minimal R (XDR, version 2) writer
def _int(v: int) -> bytes:
    return struct.pack(">i", v)


def _char(s: str | None) -> bytes:
    if s is None:
        return _int(9) + _int(-1)  # NA_STRING
    raw = s.encode("utf-8")
    return _int(9 | (8 << 12)) + _int(len(raw)) + raw  # CHARSXP, UTF-8 flag


def _sym(name: str) -> bytes:
    return _int(1) + _char(name)


def _attrs(names: list[str] | None) -> bytes:
    if names is None:
        return b""
    # a pairlist with one tagged element names = STRSXP, then the end marker
    return _int(2 | (1 << 10)) + _sym("names") + r_serialize(names) + _int(254)


def r_serialize(obj: object) -> bytes:
    """R serialization (no header) of str lists, int lists, bool lists and dicts (named lists/vectors)."""
    names = None
    if isinstance(obj, dict):
        names = list(obj)
        values = list(obj.values())
        if all(isinstance(v, str) or v is None for v in values):
            obj = values
        else:
            body = b"".join(r_serialize(v) for v in values)
            return _int(19 | (1 << 9)) + _int(len(values)) + body + _attrs(names)
    assert isinstance(obj, list)
    flag = 1 << 9 if names is not None else 0
    if all(isinstance(v, bool) for v in obj):
        return _int(10 | flag) + _int(len(obj)) + b"".join(_int(int(v)) for v in obj) + _attrs(names)
    if all(isinstance(v, int) for v in obj):
        return _int(13 | flag) + _int(len(obj)) + b"".join(_int(v) for v in obj) + _attrs(names)
    return _int(16 | flag) + _int(len(obj)) + b"".join(_char(v) for v in obj) + _attrs(names)


def r_stream(obj: object) -> bytes:
    return b"X\n" + _int(2) + _int(0x040201) + _int(0x020300) + r_serialize(obj)


def rda_file(objects: dict[str, object], compress=gzip.compress) -> bytes:
    body = b""
    for name, value in objects.items():
        body += _int(2 | (1 << 10)) + _sym(name) + r_serialize(value)
    body += _int(254)
    return compress(b"RDX2\n" + b"X\n" + _int(2) + _int(0x040201) + _int(0x020300) + body)


def lazyload_db(objects: dict[str, object]) -> tuple[bytes, bytes]:
    rdb = b""
    variables: dict[str, object] = {}
    for name, value in objects.items():
        data = r_stream(value)
        record = struct.pack(">I", len(data)) + zlib.compress(data)
        variables[name] = [len(rdb), len(record)]
        rdb += record
    index = {"variables": variables, "references": {"env::0": ["x"]}, "compressed": [True]}
    return gzip.compress(r_stream(index)), rdb


# ====================================================================== R data
@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, lambda b: b])
def test_read_rda_named_vectors_and_lists(compress) -> None:
    bibles = {"eng": {"01001001": "In the beginning .", "01001002": None}, "verses": ["01001001"]}
    out = read_rda(rda_file({"bibles": bibles, "n": [1, 2, 3]}, compress), "bibles.rda")
    assert out == {"bibles": bibles, "n": [1, 2, 3]}


def test_read_rda_rejects_garbage() -> None:
    with pytest.raises(CatalogError, match=r"junk\.rda is not readable R serialized data"):
        read_rda(b"definitely not R data", "junk.rda")


def test_read_lazyload_uses_the_index() -> None:
    rdx, rdb = lazyload_db({"emma": ["EMMA", "", "CHAPTER I", "", "Emma Woodhouse."], "persuasion": ["P"]})
    out = read_lazyload(rdx, rdb, "Rdata")
    assert out == {"emma": ["EMMA", "", "CHAPTER I", "", "Emma Woodhouse."], "persuasion": ["P"]}
    assert read_lazyload(rdx, rdb, "Rdata", names=["persuasion"]) == {"persuasion": ["P"]}
    with pytest.raises(CatalogError, match="Rdata has no object 'mansfield'"):
        read_lazyload(rdx, rdb, "Rdata", names=["mansfield"])
    with pytest.raises(CatalogError, match=r"Rdata\.rdb is shorter than its index says"):
        read_lazyload(rdx, rdb[:-10], "Rdata")
    with pytest.raises(CatalogError, match=r"Rdata\.rdx is not gzip data"):
        read_lazyload(b"plain", rdb, "Rdata")


def test_austen_builder_on_a_lazyload_fixture(tmp_path: Path) -> None:
    books = {
        key: ["TITLE", "", "CHAPTER I", "", f"First paragraph of {key}", "goes on here.", ""]
        for key in B.AUSTEN_BOOKS
    }
    books["emma"] += ["Chapter 2", "", "Emma was handsome, clever and rich."]
    rdx, rdb = lazyload_db(books)
    root = tmp_path / "deb"
    (root / Path(B.AUSTEN_DB).parent).mkdir(parents=True)
    (root / (B.AUSTEN_DB + ".rdx")).write_bytes(rdx)
    (root / (B.AUSTEN_DB + ".rdb")).write_bytes(rdb)
    raw = B.build_austen_book(B.DirReader(root))
    assert raw.texts[:2] == ["First paragraph of emma goes on here.", "Emma was handsome, clever and rich."]
    assert raw.labels.count("Emma") == 2 and len(raw.texts) == 7 and "TITLE" not in raw.texts


def bibles_reader(bibles: dict[str, dict[str, str]]) -> B.ZipReader:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            B.BIBLES_FILE, rda_file({"bibles": {**bibles, "verses": sorted(bibles["eng"])}}, lzma.compress)
        )
    return B.ZipReader(buf.getvalue(), label="qlcmatrix.deb")


def _verses(lang: str, n: int = 6) -> dict[str, str]:
    return {f"0100{c}00{v}": f"{lang} chapter {c} verse {v} ." for c in (1, 2) for v in range(1, n // 2 + 1)}


def test_bible_builders_language_and_translation_pairs() -> None:
    reader = bibles_reader({"eng": _verses("eng"), "deu": _verses("deu")})
    lang = B.build_bible_language(reader)
    assert sorted(set(lang.labels)) == ["deu", "eng"] and "eng chapter 1 verse 1." in lang.texts
    pairs = B.build_bible_translation(reader, "eng", "deu")
    assert pairs.text_pairs is not None and pairs.labels.count("same") == 3
    for a, b, label in zip(pairs.texts, pairs.text_pairs, pairs.labels, strict=True):
        same_verse = a.split(" ", 1)[1] == b.split(" ", 1)[1]
        assert same_verse == (label == "same")
        assert a.split()[2] == b.split()[2]  # negatives come from the same chapter
    again = B.build_bible_translation(reader, "eng", "deu")
    assert again.texts == pairs.texts and again.text_pairs == pairs.text_pairs  # seeded
    with pytest.raises(CatalogError, match="has no 'tgl' bible"):
        B.build_bible_translation(reader, "eng", "tgl")


# ====================================================================== SWORD zText
def ztext(entries: list[str]) -> tuple[bytes, bytes, bytes]:
    """A one-block zText testament whose index entries are ``entries`` (after the two header entries)."""
    block = b""
    index = struct.pack("<IIH", 0, 0, 0) * 2
    for text in entries:
        raw = text.encode("utf-8")
        index += struct.pack("<IIH", 0, len(block), len(raw))
        block += raw
    packed = zlib.compress(block)
    return struct.pack("<III", 0, len(packed), len(block)), index, packed


GEN = [
    '<div type="book" osisID="Gen" sID="b1"/>',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/>',
    'In the <w lemma="strong:H7225">beginning</w> God created<note type="x">a note</note> the heaven .',
    "\u00b6 And the earth &amp; the sea.",
    '<chapter n="2" osisID="Gen.2" sID="Gen.2"/>',
    "Thus the heavens were finished.",
]


def test_read_ztext_testament_finds_books_chapters_and_verses() -> None:
    verses = read_ztext_testament(*ztext(GEN), "ot", expected=(1, 2))
    assert sorted(verses) == [(1, 1, 1), (1, 1, 2), (1, 2, 1)]
    assert osis_to_text(verses[(1, 1, 1)]) == "In the beginning God created the heaven ."
    assert osis_to_text(verses[(1, 1, 2)]) == "And the earth & the sea."


def test_read_ztext_reports_another_versification_and_damage() -> None:
    bzs, bzv, bzz = ztext(GEN)
    with pytest.raises(CatalogError, match="found 1 books and 2 chapters, expected 39 and 929"):
        read_ztext_testament(bzs, bzv, bzz, "ot", expected=(39, 929))
    with pytest.raises(CatalogError, match="does not decompress"):
        read_ztext_testament(bzs, bzv, b"x" * len(bzz), "ot")
    with pytest.raises(CatalogError, match="are not zText"):
        read_ztext_testament(bzs, bzv[:-3], bzz, "ot")
    with pytest.raises(CatalogError, match="a verse before any book"):
        read_ztext_testament(*ztext(["Orphan verse."]), "ot")


def test_bible_paraphrase_pairs_kjv_with_darby(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taskscout.data.readers import sword

    monkeypatch.setattr(sword, "KJV_SHAPE", {"ot": (1, 2), "nt": (1, 2)})
    root = tmp_path / "kjv"
    (root / B.KJV_DIR).mkdir(parents=True)
    nt = [e.replace("Gen", "Matt") for e in GEN]
    for testament, entries in (("ot", GEN), ("nt", nt)):
        for ext, data in zip(("bzs", "bzv", "bzz"), ztext(entries), strict=True):
            (root / B.KJV_DIR / f"{testament}.{ext}").write_bytes(data)
    kjv = B.read_kjv(B.DirReader(root))
    assert set(kjv) == {"01001001", "01001002", "01002001", "40001001", "40001002", "40002001"}
    assert kjv["01001001"] == "In the beginning God created the heaven."
    darby = {k: f"darby {k} ." for k in kjv}
    raw = B.build_bible_paraphrase(B.DirReader(root), {"r-cran-qlcmatrix": bibles_reader({"eng": darby})})
    assert raw.text_pairs is not None and set(raw.labels) <= {"same", "different"}
    for a, b, label in zip(raw.texts, raw.text_pairs, raw.labels, strict=True):
        vid = next(k for k, v in kjv.items() if v == a)
        assert (b == f"darby {vid}.") == (label == "same")
    with pytest.raises(CatalogError, match="needs the r-cran-qlcmatrix package"):
        B.build_bible_paraphrase(B.DirReader(root), {})
