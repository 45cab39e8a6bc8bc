"""The source pool: a directory of per-source representations (ESMs, ...) with an index.

Layout (format version 2, typed in :mod:`taskscout.pool.schema`)::

    POOL/
      pool.json                    # format, description, how it was built
      index.json                   # one row per entry: kind, source, sha256 of its config.json, the config
      entries/<kind>/<source>/     # one entry: its files and config.json (with the files' sha256)
      .staging/                    # in-progress builds and imports (never read by rankings)
      .lock                        # serialises writers

Where an entry lives is decided by the directory layout alone: kinds, sources and file names are
validated single path components, and every path is resolved and checked to stay inside the pool
before anything is written or deleted. The index is the commit point: an entry is visible once its row
is in ``index.json``, and every change (build, import, remove) is staged under ``.staging``, verified,
and published under the pool lock with a journal, so a crash leaves either the old pool or -- rolled
forward by the next writer -- the fully updated one. Loading verifies the config and file checksums; a
broken entry is reported by name and skipped, never fatal to a ranking.

The built-in pool shipped inside the package is read-only: every writing operation refuses it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taskscout import paths
from taskscout.errors import PoolError
from taskscout.io import file_lock, read_json, sha256_bytes, sha256_file, write_json
from taskscout.pool.config import (
    DEFAULT_IMPORT_MAX_BYTES,
    DEFAULT_IMPORT_MAX_FILES,
    DEFAULT_IMPORT_MAX_RATIO,
)
from taskscout.pool.schema import (
    CONFIG_FILE,
    POOL_FORMAT,
    POOL_FORMAT_VERSION,
    EntryConfig,
    IndexFile,
    IndexRow,
    check_name,
    migrate_config_v1,
    parse_config,
    parse_info,
    parse_row,
)

TEXT_HASHES = "text_hashes.npy"
STAGING = ".staging"
JOURNAL = "PUBLISH.json"

_RATIO_FLOOR = 64 * 1024**2  # below this much data the ratio is not checked


def default_pool_path() -> Path:
    """The pool used when none is given: the built-in one shipped in the package (read-only)."""
    return Path(__file__).resolve().parent.parent / "pool_data" / "default"


def user_pool_path(name: str = "local") -> Path:
    """A writable pool under ``$TASKSCOUT_HOME/pools``."""
    return paths.subdir("pools") / check_name(name, "pool name")


def _label(kind: str, source: str) -> str:
    return f"{kind}/{source}"


# ---------------------------------------------------------------------------------------------- entries
def verify_entry_dir(
    directory: Path, where: str, config_sha256: str | None = None
) -> tuple[EntryConfig, str]:
    """Check one entry directory; returns its parsed config and the config's sha256.

    The directory must hold only regular files (no links, no sub-directories) with valid names, exactly
    the files its config lists, each with the listed sha256; ``config.json`` must match ``config_sha256``
    when given. Any problem raises a one-line :class:`PoolError` naming ``where``.
    """
    if directory.is_symlink() or not directory.is_dir():
        raise PoolError(f"pool entry {where}: directory is missing or a link; run `taskscout pool verify`")
    present = {}
    for item in directory.iterdir():
        mode = item.lstat().st_mode
        if not stat.S_ISREG(mode):
            raise PoolError(f"pool entry {where}: {item.name!r} is not a regular file; rebuild the entry")
        present[check_name(item.name, f"file name in {where}")] = item
    if CONFIG_FILE not in present:
        raise PoolError(f"pool entry {where}: config.json is missing; rebuild the entry")
    raw = present.pop(CONFIG_FILE).read_bytes()
    digest = sha256_bytes(raw)
    if config_sha256 is not None and digest != config_sha256:
        raise PoolError(
            f"pool entry {where}: checksum mismatch in config.json; re-import or rebuild the entry"
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PoolError(f"pool entry {where}: config.json is not valid JSON; rebuild the entry") from None
    config = parse_config(data, f"pool entry {where}")
    missing = sorted(set(config.files) - set(present))
    if missing:
        raise PoolError(f"pool entry {where}: file {missing[0]} is missing; re-import or rebuild the entry")
    extra = sorted(set(present) - set(config.files))
    if extra:
        raise PoolError(f"pool entry {where}: unexpected file {extra[0]} (not in its config's checksums)")
    for name, expected in sorted(config.files.items()):
        if sha256_file(present[name]) != expected:
            raise PoolError(
                f"pool entry {where}: checksum mismatch in {name}; re-import or rebuild the entry"
            )
    return config, digest


_VERIFIED: set[tuple[Any, ...]] = set()


def _stat_key(file: Path) -> tuple[int, int, int]:
    info = file.lstat()
    return info.st_size, info.st_mtime_ns, info.st_ino


@dataclass(frozen=True)
class PoolEntry:
    """One source's representation of one kind (``esm``, ...), as listed in the index.

    ``meta`` is the entry's validated ``config.json``; ``config_sha256`` (empty for entries made in
    memory) is the checksum the index records for it.
    """

    pool: Path
    kind: str
    source: str
    meta: dict[str, Any]
    config_sha256: str = ""

    @property
    def path(self) -> Path:
        return self.pool / "entries" / self.kind / self.source

    @property
    def label(self) -> str:
        return _label(self.kind, self.source)

    @property
    def base_model(self) -> str:
        return str(self.meta.get("base_model_name", ""))

    @property
    def fingerprint(self) -> str:
        return str(self.meta.get("base_model_fingerprint") or "")

    @property
    def dim(self) -> int:
        """Width of the base encoder the entry was built for (0 if not recorded)."""
        value = self.meta.get("base_model_dim") or self.meta.get("esm_embedding_dim") or 0
        return int(value) if isinstance(value, int) else 0

    def verify(self) -> None:
        """Raise :class:`PoolError` unless the config and every file match their recorded checksums.

        A successful check is remembered while the files' size, mtime and inode stay the same, so one
        ranking reading an entry's files several times hashes them once.
        """
        try:
            key = (
                str(self.path),
                self.config_sha256,
                tuple(sorted((f.name, *_stat_key(f)) for f in self.path.iterdir())),
            )
        except OSError:
            key = None
        if key is not None and key in _VERIFIED:
            return
        verify_entry_dir(self.path, self.label, self.config_sha256 or None)
        if key is not None:
            if len(_VERIFIED) > 4096:
                _VERIFIED.clear()
            _VERIFIED.add(key)

    def _file(self, name: str) -> Path:
        check_name(name, "file name")
        if name not in self.meta.get("files", {}):
            raise PoolError(f"pool entry {self.label}: has no {name}; rebuild the entry")
        return self.path / name

    def load_array(
        self,
        name: str,
        *,
        dtype_kinds: str = "biuf",
        ndim: int | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> np.ndarray:
        """A ``.npy`` file of this entry, checksums verified and contents validated.

        Pickled, truncated or unreadable files, a dtype outside ``dtype_kinds`` (numpy kind letters), a
        different ``ndim`` or ``shape`` and non-finite floats all raise a one-line :class:`PoolError`.
        """
        file = self._file(name)
        self.verify()
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise PoolError(
                f"pool entry {self.label}: unreadable {name} ({type(exc).__name__}); rebuild the entry"
            ) from None
        return validate_array(array, f"pool entry {self.label}: {name}", dtype_kinds, ndim, shape)

    def load_tensors(self, name: str) -> dict[str, np.ndarray]:
        """A ``.safetensors`` file of this entry, checksums verified; problems raise :class:`PoolError`."""
        from safetensors.numpy import load_file

        file = self._file(name)
        self.verify()
        try:
            tensors = load_file(str(file))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise PoolError(
                f"pool entry {self.label}: unreadable {name} ({str(exc).splitlines()[0][:120]}); "
                "rebuild the entry"
            ) from None
        return {k: validate_array(v, f"pool entry {self.label}: {name}[{k}]") for k, v in tensors.items()}

    def text_hashes(self) -> np.ndarray | None:
        """Sorted 64-bit hashes of (a sample of) the source's normalised texts; None if not stored.

        A stored but damaged file raises :class:`PoolError` (the entry cannot be checked for duplicates).
        """
        if TEXT_HASHES not in self.meta.get("files", {}):
            return None
        return self.load_array(TEXT_HASHES, dtype_kinds="u", ndim=1)


def validate_array(
    array: np.ndarray,
    where: str,
    dtype_kinds: str = "biuf",
    ndim: int | None = None,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """``array`` if its dtype kind, rank, shape and values are sane, else a one-line :class:`PoolError`."""
    if array.dtype.kind not in dtype_kinds or array.dtype.hasobject:
        raise PoolError(f"{where} has dtype {array.dtype}, expected one of kinds {dtype_kinds!r}; rebuild it")
    if ndim is not None and array.ndim != ndim:
        raise PoolError(f"{where} has {array.ndim} dimensions, expected {ndim}; rebuild it")
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise PoolError(f"{where} has shape {tuple(array.shape)}, expected {tuple(shape)}; rebuild it")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise PoolError(f"{where} holds NaN or infinite values; rebuild it")
    return array


@dataclass
class VerifyReport:
    """What :meth:`Pool.verify` found: good entries, broken ones (label -> why), stray directories."""

    ok: list[str] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    unindexed: dict[str, str] = field(default_factory=dict)
    reindexed: list[str] = field(default_factory=list)  # configs changed since indexing, re-indexed
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return not self.broken and not self.unindexed


# ---------------------------------------------------------------------------------------------- the pool
class Pool:
    """A source pool directory. ``Pool(path)`` opens one; ``Pool.create(path)`` makes a new one.

    A writable version-1 pool is migrated to the current format when opened; the built-in pool is
    read-only and is read as it is.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        info_file = self.path / "pool.json"
        if not info_file.is_file():
            raise PoolError(
                f"{self.path} is not a taskscout pool (no pool.json); create one with `taskscout pool build`"
            )
        try:
            data = read_json(info_file)
        except (OSError, ValueError):
            raise PoolError(f"{info_file} is not valid JSON; restore it or rebuild the pool") from None
        self.info = parse_info(data, str(info_file)).model_dump(mode="json")
        self.read_only = _is_builtin(self.path) or not os.access(self.path, os.W_OK)
        # Entries skipped by the last `entries()` call: "kind/source" (or "index row N") -> why.
        self.problems: dict[str, str] = {}
        if self.info["format_version"] < POOL_FORMAT_VERSION and not self.read_only:
            self._migrate()

    @classmethod
    def create(cls, path: str | os.PathLike[str], description: str = "", exist_ok: bool = True) -> Pool:
        path = Path(path).expanduser()
        if _is_builtin(path):
            raise PoolError(_READ_ONLY.format(path=path))
        if (path / "pool.json").exists():
            if not exist_ok:
                raise PoolError(f"a pool already exists at {path}")
            return cls(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise PoolError(f"{path} exists and is not an empty directory or a pool; choose another --pool")
        try:
            path.mkdir(parents=True, exist_ok=True)
            write_json(path / "index.json", {"format_version": POOL_FORMAT_VERSION, "entries": []})
            write_json(
                path / "pool.json",
                {
                    "format": POOL_FORMAT,
                    "format_version": POOL_FORMAT_VERSION,
                    "description": description,
                    "build": {},
                },
            )
        except OSError as exc:
            raise PoolError(f"cannot create a pool at {path}: {exc.strerror or exc}") from None
        return cls(path)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str]) -> Pool:
        return cls.create(path, exist_ok=True)

    # ------------------------------------------------------------------ reading
    def _rows(self) -> tuple[list[IndexRow], dict[str, str]]:
        """Valid index rows and the problems of invalid ones (never raises for one bad row)."""
        if self.info["format_version"] < POOL_FORMAT_VERSION:
            return self._scan_v1()
        index_file = self.path / "index.json"
        try:
            data = read_json(index_file)
        except FileNotFoundError:
            raise PoolError(
                f"pool {self.path} has no index.json; run `taskscout pool verify --repair`"
            ) from None
        except (OSError, ValueError):
            raise PoolError(
                f"{index_file} is not valid JSON; run `taskscout pool verify --repair --pool {self.path}`"
            ) from None
        try:
            index = IndexFile.model_validate(data)
        except Exception:
            raise PoolError(
                f"{index_file} is not a version-{POOL_FORMAT_VERSION} pool index; run "
                f"`taskscout pool verify --repair --pool {self.path}`"
            ) from None
        rows, problems, seen = [], {}, set()
        for number, raw in enumerate(index.entries, start=1):
            try:
                row = parse_row(raw, f"{index_file} row {number}")
            except PoolError as exc:
                problems[f"index row {number}"] = str(exc)
                continue
            key = (row.kind, row.source)
            if key in seen:
                problems[_label(*key)] = f"listed twice in {index_file}; run `taskscout pool verify --repair`"
                continue
            seen.add(key)
            rows.append(row)
        return rows, problems

    def _scan_v1(self) -> tuple[list[IndexRow], dict[str, str]]:
        """Rows of a version-1 pool read from its entries (the built-in pool before migration)."""
        rows, problems = [], {}
        for kind, source, directory in self._entry_dirs():
            try:
                raw = (directory / CONFIG_FILE).read_bytes()
                meta = parse_config(migrate_config_v1(json.loads(raw), kind), _label(kind, source))
            except (OSError, ValueError, PoolError) as exc:
                problems[_label(kind, source)] = str(exc).splitlines()[0]
                continue
            rows.append(IndexRow(kind=kind, source=source, config_sha256=sha256_bytes(raw), meta=meta))
        return rows, problems

    def _entry_dirs(self) -> Iterator[tuple[str, str, Path]]:
        """(kind, source, directory) of every directory in the entry layout, names checked, no links."""
        root = self.path / "entries"
        if not root.is_dir() or root.is_symlink():
            return
        for kind_dir in sorted(root.iterdir()):
            if kind_dir.is_symlink() or not kind_dir.is_dir():
                continue
            for source_dir in sorted(kind_dir.iterdir()):
                if source_dir.is_symlink() or not source_dir.is_dir():
                    continue
                try:
                    check_name(kind_dir.name, "kind")
                    check_name(source_dir.name, "source")
                except PoolError:
                    continue
                yield kind_dir.name, source_dir.name, source_dir

    def entries(
        self,
        kind: str | None = None,
        *,
        base_model: str | None = None,
        language: str | None = None,
        task_type: str | None = None,
    ) -> list[PoolEntry]:
        """Valid entries, optionally filtered; rows that fail validation are listed in :attr:`problems`."""
        rows, problems = self._rows()
        self.problems = problems
        out = []
        for row in rows:
            if kind and row.kind != kind:
                continue
            entry = PoolEntry(self.path, row.kind, row.source, row.meta.to_json_dict(), row.config_sha256)
            if base_model and entry.base_model != base_model:
                continue
            if language and entry.meta.get("language") != language:
                continue
            if task_type and entry.meta.get("task_type") != task_type:
                continue
            out.append(entry)
        return out

    def get(self, kind: str, source: str) -> PoolEntry:
        for entry in self.entries(kind):
            if entry.source == source:
                return entry
        raise PoolError(f"pool {self.path} has no {kind} entry for {source!r}; see `taskscout pool list`")

    def has(self, kind: str, source: str) -> bool:
        return any(e.source == source for e in self.entries(kind))

    def _entry_dir(self, kind: str, source: str) -> Path:
        """``entries/<kind>/<source>`` after checking the names and that no link leads out of the pool."""
        check_name(kind, "kind")
        check_name(source, "source")
        directory = self.path / "entries" / kind / source
        expected = os.path.join(os.path.realpath(self.path), "entries", kind, source)
        if os.path.realpath(directory) != expected:
            raise PoolError(
                f"pool {self.path}: entries/{kind}/{source} is a link or leads outside the pool; "
                "remove the link and run `taskscout pool verify --repair`"
            )
        return directory

    # ------------------------------------------------------------------ writing: staging and publishing
    def _require_writable(self) -> None:
        if _is_builtin(self.path):
            raise PoolError(_READ_ONLY.format(path=self.path))
        if self.read_only:
            raise PoolError(
                f"pool {self.path} is not writable; pass a pool directory you can write with --pool"
            )

    def _locked(self) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.path / ".lock")

    @contextlib.contextmanager
    def staging(self, purpose: str = "stage") -> Iterator[Path]:
        """A private directory under ``.staging`` for this process, removed afterwards.

        It is claimed by a lock file that the OS releases when the process dies, so the next writer can
        tell a crashed staging (cleaned or rolled forward by :meth:`recover`) from a running one.
        """
        self._require_writable()
        self.recover()
        root = self.path / STAGING
        root.mkdir(exist_ok=True)
        fd, lock_name = tempfile.mkstemp(
            prefix=f"{check_name(purpose, 'purpose')}-", suffix=".lock", dir=root
        )
        os.close(fd)
        lock_file = Path(lock_name)
        directory = lock_file.with_suffix("")
        try:
            with file_lock(lock_file):
                directory.mkdir()
                try:
                    yield directory
                finally:
                    if not (directory / JOURNAL).exists():
                        shutil.rmtree(directory, ignore_errors=True)
        finally:
            # A journal left behind means a publish failed half-way: keep it for `recover` to finish.
            if not (directory / JOURNAL).exists():
                lock_file.unlink(missing_ok=True)

    def recover(self) -> list[str]:
        """Finish or discard what crashed writers left in ``.staging``; returns what was rolled forward."""
        root = self.path / STAGING
        if self.read_only or not root.is_dir():
            return []
        rolled: list[str] = []
        with self._locked():
            for item in sorted(root.iterdir()):
                if item.suffix == ".lock":
                    with file_lock(item, wait=False) as mine:
                        if not mine:
                            continue  # its writer is alive
                        directory = item.with_suffix("")
                        if (directory / JOURNAL).is_file():
                            rolled += self._apply_journal(directory)
                        shutil.rmtree(directory, ignore_errors=True)
                        item.unlink(missing_ok=True)
                elif item.is_dir() and not item.with_suffix(".lock").exists():
                    if (item / JOURNAL).is_file():
                        rolled += self._apply_journal(item)
                    shutil.rmtree(item, ignore_errors=True)
        return rolled

    def _publish(self, stage: Path, add: list[tuple[str, str]], remove: list[tuple[str, str]]) -> None:
        """Make staged entries (``stage/new/<kind>/<source>``) visible and removed ones invisible, at once.

        The journal written first lets :meth:`recover` roll an interrupted publish forward.
        """
        with self._locked():
            write_json(stage / JOURNAL, {"add": [list(k) for k in add], "remove": [list(k) for k in remove]})
            self._apply_journal(stage)

    def _apply_journal(self, stage: Path) -> list[str]:
        """Apply (idempotently) a staged change; called with the pool lock held."""
        journal = read_json(stage / JOURNAL)
        add = [(check_name(k, "kind"), check_name(s, "source")) for k, s in journal.get("add", [])]
        remove = [(check_name(k, "kind"), check_name(s, "source")) for k, s in journal.get("remove", [])]
        # Read the index before moving anything: a damaged index must stop the change, not half of it.
        rows, _ = self._rows() if (self.path / "index.json").exists() else ([], {})
        old = stage / "old"
        for kind, source in remove + add:
            target = self._entry_dir(kind, source)
            new = stage / "new" / kind / source
            if (kind, source) in add and not new.exists():
                continue  # moved in before the crash
            if target.exists():
                (old / kind).mkdir(parents=True, exist_ok=True)
                os.replace(target, old / kind / f"{source}.{len(list((old / kind).iterdir()))}")
            if (kind, source) in add:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(new, target)
        changed = set(add) | set(remove)
        rows = [r for r in rows if (r.kind, r.source) not in changed]
        for kind, source in add:
            config, digest = verify_entry_dir(self._entry_dir(kind, source), _label(kind, source))
            rows.append(IndexRow(kind=kind, source=source, config_sha256=digest, meta=config))
        self._write_index(rows)
        (stage / JOURNAL).unlink()
        shutil.rmtree(old, ignore_errors=True)
        return [_label(*k) for k in add]

    def _write_index(self, rows: list[IndexRow]) -> None:
        rows = sorted(rows, key=lambda r: (r.kind, r.source))
        write_json(
            self.path / "index.json",
            {"format_version": POOL_FORMAT_VERSION, "entries": [r.model_dump(mode="json") for r in rows]},
        )

    # ------------------------------------------------------------------ writing: changes
    def add_entry(
        self, kind: str, source: str, files: Mapping[str, str | os.PathLike[str]], meta: Mapping[str, Any]
    ) -> PoolEntry:
        """Add (or replace) the entry ``kind/source`` made of ``files`` (name -> path) and metadata ``meta``.

        The files are copied into staging, their checksums recorded in the entry's ``config.json`` (``meta``
        plus ``files``), the config validated, and the entry published atomically.
        """
        check_name(kind, "kind")
        check_name(source, "source")
        with self.staging("add") as stage:
            new = stage / "new" / kind / source
            new.mkdir(parents=True)
            checksums = {}
            for name, file in sorted(files.items()):
                if check_name(name, "file name") == CONFIG_FILE:
                    raise PoolError("pass an entry's metadata as meta, not as a config.json file")
                shutil.copyfile(file, new / name)
                checksums[name] = sha256_file(new / name)
            config = parse_config({**dict(meta), "files": checksums}, f"new entry {_label(kind, source)}")
            write_json(new / CONFIG_FILE, config.to_json_dict())
            self._publish(stage, add=[(kind, source)], remove=[])
        return self.get(kind, source)

    def add(self, kind: str, source: str, staged: Path) -> PoolEntry:
        """Add the entry written to directory ``staged`` (its files plus a ``config.json`` of metadata)."""
        staged = Path(staged)
        try:
            meta = read_json(staged / CONFIG_FILE)
        except (OSError, ValueError) as exc:
            raise PoolError(f"staged entry {staged}: unreadable config.json ({type(exc).__name__})") from None
        if not isinstance(meta, dict):
            raise PoolError(f"staged entry {staged}: config.json must be a JSON object")
        meta.pop("files", None)
        files = {f.name: f for f in sorted(staged.iterdir()) if f.name != CONFIG_FILE}
        return self.add_entry(kind, source, files, meta)

    def remove(self, source: str, kind: str | None = None) -> int:
        """Remove a source's entries (of one kind, or all kinds); returns how many were removed."""
        self._require_writable()
        gone = [(e.kind, e.source) for e in self.entries(kind) if e.source == source]
        if not gone:
            raise PoolError(f"pool {self.path} has no entry for {source!r}; see `taskscout pool list`")
        with self.staging("remove") as stage:
            self._publish(stage, add=[], remove=gone)
        return len(gone)

    def update_info(self, **fields: Any) -> None:
        self._require_writable()
        with self._locked():
            self.info.update(fields)
            write_json(self.path / "pool.json", self.info)

    def reindex(self) -> int:
        """Rebuild ``index.json`` from the verified entries on disk; returns the number of entries."""
        return len(self.verify(repair=True).ok)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Re-check every entry; with ``repair``, rebuild the index from the entries that verify.

        Broken entries are reported (and, when repairing, left out of the index, their files kept for
        inspection); directories in the entry layout without an index row are reported as unindexed, or
        indexed if they verify when repairing.
        """
        report = VerifyReport()
        if repair:
            self._require_writable()
            self.recover()
        try:
            rows, problems = self._rows()
        except PoolError as exc:
            if not repair:
                raise
            rows, problems = [], {"index.json": str(exc)}
        indexed = {(r.kind, r.source): r for r in rows}
        report.broken.update(problems)
        good: list[IndexRow] = []
        for (kind, source), row in sorted(indexed.items()):
            label = _label(kind, source)
            try:
                directory = self._entry_dir(kind, source)
                config, digest = verify_entry_dir(directory, label, row.config_sha256)
            except PoolError as exc:
                report.broken[label] = str(exc)
                if not repair or "config.json" not in str(exc) or "checksum" not in str(exc):
                    continue
                # An edited config whose files still verify: repairing trusts the config on disk.
                try:
                    config, digest = verify_entry_dir(directory, label)
                except PoolError as again:
                    report.broken[label] = str(again)
                    continue
                report.broken.pop(label)
                report.reindexed.append(label)
            good.append(IndexRow(kind=kind, source=source, config_sha256=digest, meta=config))
        for kind, source, directory in self._entry_dirs():
            if (kind, source) in indexed:
                continue
            try:
                config, digest = verify_entry_dir(directory, _label(kind, source))
            except PoolError as exc:
                report.unindexed[_label(kind, source)] = str(exc)
                continue
            if repair:
                good.append(IndexRow(kind=kind, source=source, config_sha256=digest, meta=config))
            else:
                report.unindexed[_label(kind, source)] = "verifies but has no index row (--repair adds it)"
        report.ok = [_label(r.kind, r.source) for r in good]
        if repair:
            with self._locked():
                self._write_index(good)
            report.repaired = True
        return report

    def _migrate(self) -> None:
        """Rewrite a version-1 pool in the current format (configs, index with config checksums)."""
        with self._locked():
            rows = []
            for kind, source, directory in self._entry_dirs():
                where = _label(kind, source)
                try:
                    config = parse_config(
                        migrate_config_v1(read_json(directory / CONFIG_FILE), kind), f"pool entry {where}"
                    )
                    write_json(directory / CONFIG_FILE, config.to_json_dict())
                    config, digest = verify_entry_dir(directory, where)
                except (OSError, ValueError, PoolError) as exc:
                    self.problems[where] = f"not migrated: {str(exc).splitlines()[0]}"
                    continue
                rows.append(IndexRow(kind=kind, source=source, config_sha256=digest, meta=config))
            self._write_index(rows)
            self.info["format_version"] = POOL_FORMAT_VERSION
            write_json(self.path / "pool.json", self.info)

    # ------------------------------------------------------------------ sharing
    def export(self, archive: str | os.PathLike[str], sources: list[str] | None = None) -> Path:
        """Write the pool (or some sources) as a ``.tar.gz`` that :meth:`import_archive` reads.

        Entries are verified first, so an export never re-signs a damaged file.
        """
        from taskscout.io import atomic_path

        archive = Path(archive)
        chosen = [e for e in self.entries() if not sources or e.source in sources]
        for entry in chosen:
            entry.verify()
        index = {
            "format_version": POOL_FORMAT_VERSION,
            "entries": [
                {"kind": e.kind, "source": e.source, "config_sha256": e.config_sha256, "meta": e.meta}
                for e in chosen
            ],
        }
        info = {**self.info, "format_version": POOL_FORMAT_VERSION}
        with atomic_path(archive) as tmp, tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "pool.json", _json_bytes(info))
            _add_bytes(tar, "index.json", _json_bytes(index))
            for entry in chosen:
                for file in sorted(entry.path.iterdir()):
                    _add_bytes(tar, f"entries/{entry.kind}/{entry.source}/{file.name}", file.read_bytes())
        return archive

    def import_archive(
        self,
        archive: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        max_bytes: int = DEFAULT_IMPORT_MAX_BYTES,
        max_files: int = DEFAULT_IMPORT_MAX_FILES,
        max_ratio: float = DEFAULT_IMPORT_MAX_RATIO,
    ) -> list[str]:
        """Add the entries of an exported archive, all or nothing; returns the ``kind/source`` imported.

        Nothing is written outside ``.staging`` until every member has been checked (regular files and
        directories in the entry layout only, within ``max_bytes`` / ``max_files`` / ``max_ratio``) and
        every entry verified against the checksums the archive claims; then all entries are published
        at once. Existing entries are kept unless ``overwrite``.
        """
        self._require_writable()
        archive = Path(archive)
        if not archive.is_file():
            raise PoolError(f"pool archive {archive} does not exist or is not a file")
        with self.staging("import") as stage:
            unpacked = stage / "archive"
            _unpack_checked(archive, unpacked, max_bytes=max_bytes, max_files=max_files, max_ratio=max_ratio)
            verified = _verify_archive(unpacked, archive)
            existing = {(e.kind, e.source) for e in self.entries()}
            add = [key for key in verified if overwrite or key not in existing]
            for kind, source in add:
                (stage / "new" / kind).mkdir(parents=True, exist_ok=True)
                os.replace(unpacked / "entries" / kind / source, stage / "new" / kind / source)
            if add:
                self._publish(stage, add=add, remove=[])
        return [_label(*k) for k in add]


_READ_ONLY = (
    "{path} is the built-in pool, which is read-only; pass a pool you own with --pool "
    "(e.g. $TASKSCOUT_HOME/pools/local)"
)


def _is_builtin(path: Path) -> bool:
    try:
        return os.path.realpath(path) == os.path.realpath(default_pool_path())
    except OSError:
        return False


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


# ---------------------------------------------------------------------------------------------- archives
def _member_parts(name: str, archive: Path) -> list[str]:
    """The validated path components of an archive member in the pool layout, or a :class:`PoolError`."""
    bad = f"{archive}: member {name!r} is not part of a pool's layout; not imported"
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        raise PoolError(bad)
    parts = name.removeprefix("./").rstrip("/").split("/")
    try:
        for part in parts:
            check_name(part, "member name")
    except PoolError:
        raise PoolError(bad) from None
    return parts


def _unpack_checked(archive: Path, out: Path, *, max_bytes: int, max_files: int, max_ratio: float) -> None:
    """Unpack ``archive`` into ``out`` checking every member ourselves (no reliance on tarfile filters).

    Accepted: regular files ``pool.json``, ``index.json`` and ``entries/<kind>/<source>/<file>`` and the
    directories above them; anything else (links, devices, sparse files, absolute or parent paths,
    duplicates, other names) rejects the whole archive. Files are created by this code with the user's
    umask, never with the member's mode or owner.
    """
    out.mkdir()
    archive_size = max(1, archive.stat().st_size)
    total = files = 0
    seen: set[tuple[str, ...]] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = _member_parts(member.name, archive)
                if member.isdir():
                    depth_ok = parts[0] == "entries" and len(parts) <= 3
                else:
                    depth_ok = parts in (["pool.json"], ["index.json"]) or (
                        parts[0] == "entries" and len(parts) == 4
                    )
                if member.isdir() and depth_ok:
                    continue  # directories are created from the files' paths
                if not member.isfile() or member.issparse() or not depth_ok:
                    what = (
                        "a link or special file" if not (member.isfile() or member.isdir()) else "misplaced"
                    )
                    raise PoolError(f"{archive}: member {member.name!r} is {what}; not imported")
                key = tuple(parts)
                if key in seen:
                    raise PoolError(f"{archive}: member {member.name!r} appears twice; not imported")
                seen.add(key)
                files += 1
                total += member.size
                if files > max_files:
                    raise PoolError(
                        f"{archive} holds more than {max_files:,} files; raise --max-files to import it"
                    )
                if total > max_bytes:
                    raise PoolError(
                        f"{archive} unpacks to more than {max_bytes:,} bytes; raise --max-bytes to import it"
                    )
                if total > _RATIO_FLOOR and total > max_ratio * archive_size:
                    raise PoolError(
                        f"{archive} unpacks to over {max_ratio:g} times its size (a decompression bomb?); "
                        "raise --max-ratio to import it"
                    )
                dest = out.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a data stream
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
                with os.fdopen(fd, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise PoolError(
            f"cannot read pool archive {archive}: {(str(exc) or type(exc).__name__).splitlines()[0]}"
        ) from None


def _verify_archive(unpacked: Path, archive: Path) -> list[tuple[str, str]]:
    """Verify an unpacked archive's entries against the checksums it claims; returns (kind, source) keys.

    Version 2 archives claim each ``config.json`` checksum in their ``index.json`` and each file's in the
    config; version 1 archives (no index) claim only the files' checksums, in the configs, which are
    migrated to version 2 here.
    """
    try:
        info = parse_info(read_json(unpacked / "pool.json"), f"{archive}: pool.json")
    except (OSError, ValueError):
        raise PoolError(f"{archive} is not a taskscout pool archive (no readable pool.json)") from None
    entries_root = unpacked / "entries"
    present = sorted(
        (k.name, s.name)
        for k in (entries_root.iterdir() if entries_root.is_dir() else [])
        for s in k.iterdir()
    )
    claims: dict[tuple[str, str], str | None] = {}
    if info.format_version >= 2:
        try:
            index = IndexFile.model_validate(read_json(unpacked / "index.json"))
        except Exception:
            raise PoolError(f"{archive}: index.json is missing or invalid; not imported") from None
        for number, raw in enumerate(index.entries, start=1):
            row = parse_row(raw, f"{archive}: index.json row {number}")
            claims[(row.kind, row.source)] = row.config_sha256
        unclaimed = sorted(set(present) - set(claims))
        if unclaimed:
            raise PoolError(
                f"{archive}: entry {_label(*unclaimed[0])} is not in its index.json; not imported"
            )
        missing = sorted(set(claims) - set(present))
        if missing:
            raise PoolError(f"{archive}: entry {_label(*missing[0])} is listed but missing; not imported")
    else:
        for kind, source in present:
            directory = entries_root / kind / source
            try:
                data = read_json(directory / CONFIG_FILE)
            except (OSError, ValueError):
                raise PoolError(
                    f"{archive}: entry {_label(kind, source)} has no readable config.json"
                ) from None
            if not isinstance(data, dict):
                raise PoolError(f"{archive}: entry {_label(kind, source)}: config.json is not an object")
            write_json(directory / CONFIG_FILE, migrate_config_v1(data, kind))
            claims[(kind, source)] = None
    for (kind, source), digest in sorted(claims.items()):
        verify_entry_dir(entries_root / kind / source, f"{_label(kind, source)} in {archive}", digest)
    return sorted(claims)


def open_pool(path: str | os.PathLike[str] | None = None) -> Pool:
    """Open ``path``, or the built-in pool when ``path`` is None."""
    return Pool(default_pool_path() if path is None else path)
