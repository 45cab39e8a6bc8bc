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
import gc
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskscout import paths
from taskscout.errors import PoolError
from taskscout.io import atomic_path, file_lock, read_json, sha256_bytes, sha256_file, write_json
from taskscout.pool.archive import add_bytes, json_bytes, unpack_checked, verify_archive
from taskscout.pool.config import (
    DEFAULT_IMPORT_MAX_BYTES,
    DEFAULT_IMPORT_MAX_FILES,
    DEFAULT_IMPORT_MAX_RATIO,
)
from taskscout.pool.entry import TEXT_HASHES, PoolEntry, label, validate_array, verify_entry_dir
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

__all__ = [
    "TEXT_HASHES",
    "Pool",
    "PoolEntry",
    "VerifyReport",
    "default_pool_path",
    "open_pool",
    "user_pool_path",
    "validate_array",
    "verify_entry_dir",
]

STAGING = ".staging"
JOURNAL = "PUBLISH.json"


def default_pool_path() -> Path:
    """The pool used when none is given: the built-in one shipped in the package (read-only)."""
    return Path(__file__).resolve().parent.parent / "pool_data" / "default"


def user_pool_path(name: str = "local") -> Path:
    """A writable pool under ``$TASKSCOUT_HOME/pools``."""
    return paths.subdir("pools") / check_name(name, "pool name")


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
        self._cache: tuple[str, list[IndexRow], dict[str, str]] | None = None  # parsed index by its sha256
        if self.info["format_version"] < POOL_FORMAT_VERSION and not self.read_only:
            self._migrate()

    @classmethod
    def create(cls, path: str | os.PathLike[str], description: str = "", exist_ok: bool = True) -> Pool:
        """A new, empty pool at ``path`` (with ``exist_ok``, the existing pool there is opened instead)."""
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
        """The pool at ``path``, created empty if there is none."""
        return cls.create(path, exist_ok=True)

    # ------------------------------------------------------------------ reading
    def _rows(self) -> tuple[list[IndexRow], dict[str, str]]:
        """Valid index rows and the problems of invalid ones (never raises for one bad row)."""
        if self.info["format_version"] < POOL_FORMAT_VERSION:
            return self._scan_v1()
        index_file = self.path / "index.json"
        try:
            raw = index_file.read_bytes()
        except FileNotFoundError:
            raise PoolError(
                f"pool {self.path} has no index.json; run `taskscout pool verify --repair`"
            ) from None
        except OSError as exc:
            raise PoolError(f"cannot read {index_file}: {exc.strerror or exc}") from None
        stamp = sha256_bytes(raw)
        if self._cache is not None and self._cache[0] == stamp:
            return list(self._cache[1]), dict(self._cache[2])  # unchanged since last parsed
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
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
                problems[label(*key)] = f"listed twice in {index_file}; run `taskscout pool verify --repair`"
                continue
            seen.add(key)
            rows.append(row)
        self._cache = (stamp, rows, problems)
        return list(rows), dict(problems)

    def _scan_v1(self) -> tuple[list[IndexRow], dict[str, str]]:
        """Rows of a version-1 pool read from its entries (the built-in pool before migration)."""
        rows, problems = [], {}
        for kind, source, directory in self._entry_dirs():
            try:
                raw = (directory / CONFIG_FILE).read_bytes()
                meta = parse_config(migrate_config_v1(json.loads(raw), kind), label(kind, source))
            except (OSError, ValueError, PoolError) as exc:
                problems[label(kind, source)] = str(exc).splitlines()[0]
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
        with _gc_paused():
            return self._entries(kind, base_model=base_model, language=language, task_type=task_type)

    def _entries(
        self, kind: str | None, *, base_model: str | None, language: str | None, task_type: str | None
    ) -> list[PoolEntry]:
        rows, problems = self._rows()
        self.problems = problems
        out = []
        for row in rows:
            if kind and row.kind != kind:
                continue
            entry = PoolEntry(self.path, row.kind, row.source, _meta_dict(row.meta), row.config_sha256)
            if base_model and entry.base_model != base_model:
                continue
            if language and entry.meta.get("language") != language:
                continue
            if task_type and entry.meta.get("task_type") != task_type:
                continue
            out.append(entry)
        return out

    def get(self, kind: str, source: str) -> PoolEntry:
        """The ``kind`` entry of ``source``; a :class:`PoolError` if the pool has none."""
        for entry in self.entries(kind):
            if entry.source == source:
                return entry
        raise PoolError(f"pool {self.path} has no {kind} entry for {source!r}; see `taskscout pool list`")

    def has(self, kind: str, source: str) -> bool:
        """Whether the pool holds a ``kind`` entry of ``source``."""
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
        with contextlib.ExitStack() as claim:
            # Created and claimed under the pool lock, so `recover` never sees it unclaimed.
            with self._locked():
                root.mkdir(exist_ok=True)
                fd, lock_name = tempfile.mkstemp(
                    prefix=f"{check_name(purpose, 'purpose')}-", suffix=".lock", dir=root
                )
                os.close(fd)
                lock_file = Path(lock_name)
                claim.enter_context(file_lock(lock_file))
                directory = lock_file.with_suffix("")
                directory.mkdir()
            try:
                yield directory
            finally:
                # A journal left behind means a publish failed half-way: keep it for `recover`.
                if not (directory / JOURNAL).exists():
                    shutil.rmtree(directory, ignore_errors=True)
                    lock_file.unlink(missing_ok=True)

    def recover(self) -> list[str]:
        """Finish or discard what crashed writers left in ``.staging``; returns what was rolled forward.

        A staging whose writer died before publishing is deleted; one that died while publishing (its
        journal is there) is rolled forward. A roll-forward that cannot finish (a damaged index) is left
        in place and retried after `taskscout pool verify --repair`.
        """
        root = self.path / STAGING
        if self.read_only or not root.is_dir():
            return []
        rolled: list[str] = []
        with self._locked():
            for item in sorted(root.iterdir()):
                lock_file = item if item.suffix == ".lock" else item.with_suffix(".lock")
                directory = item.with_suffix("") if item.suffix == ".lock" else item
                if item.suffix != ".lock" and lock_file.exists():
                    continue  # handled through its lock file
                with file_lock(lock_file, wait=False) as mine:
                    if not mine:
                        continue  # its writer is alive
                    if (directory / JOURNAL).is_file():
                        try:
                            rolled += self._apply_journal(directory)
                        except PoolError:
                            continue
                    shutil.rmtree(directory, ignore_errors=True)
                    lock_file.unlink(missing_ok=True)
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
        adding = set(add)  # a set: publishing thousands of entries stays linear
        for kind, source in remove + add:
            target = self._entry_dir(kind, source)
            new = stage / "new" / kind / source
            if (kind, source) in adding and not new.exists():
                continue  # moved in before the crash
            if target.exists():
                (old / kind).mkdir(parents=True, exist_ok=True)
                os.replace(target, old / kind / f"{source}.{len(list((old / kind).iterdir()))}")
            if (kind, source) in adding:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(new, target)
        changed = set(add) | set(remove)
        rows = [r for r in rows if (r.kind, r.source) not in changed]
        for kind, source in add:
            config, digest = verify_entry_dir(self._entry_dir(kind, source), label(kind, source))
            rows.append(IndexRow(kind=kind, source=source, config_sha256=digest, meta=config))
        self._write_index(rows)
        (stage / JOURNAL).unlink()
        shutil.rmtree(old, ignore_errors=True)
        return [label(*k) for k in add]

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
        return self.add_entries([(kind, source, files, meta)])[0]

    def add_entries(
        self, items: list[tuple[str, str, Mapping[str, str | os.PathLike[str]], Mapping[str, Any]]]
    ) -> list[PoolEntry]:
        """Add (or replace) several entries ``(kind, source, files, meta)`` at once, all or nothing.

        Like :meth:`add_entry`, but one staging and one publish (one index rewrite) for all of them, so
        adding thousands of entries costs O(entries), not O(entries^2).
        """
        keys = [(check_name(kind, "kind"), check_name(source, "source")) for kind, source, _, _ in items]
        if len(set(keys)) != len(keys):
            raise PoolError("the same kind/source is added twice; give every entry its own source name")
        with self.staging("add") as stage:
            for kind, source, files, meta in items:
                new = stage / "new" / kind / source
                new.mkdir(parents=True)
                checksums = {}
                for name, file in sorted(files.items()):
                    if check_name(name, "file name") == CONFIG_FILE:
                        raise PoolError("pass an entry's metadata as meta, not as a config.json file")
                    try:
                        shutil.copyfile(file, new / name)
                    except OSError as exc:
                        raise PoolError(f"cannot read entry file {file}: {exc.strerror or exc}") from None
                    checksums[name] = sha256_file(new / name)
                config = parse_config({**dict(meta), "files": checksums}, f"new entry {label(kind, source)}")
                write_json(new / CONFIG_FILE, config.to_json_dict())
            if keys:
                self._publish(stage, add=keys, remove=[])
        wanted = set(keys)
        found = {(e.kind, e.source): e for e in self.entries() if (e.kind, e.source) in wanted}
        return [found[key] for key in keys]

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
        """Set top-level fields of ``pool.json`` (written atomically, under the pool lock)."""
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
            name = label(kind, source)
            try:
                directory = self._entry_dir(kind, source)
                config, digest = verify_entry_dir(directory, name, row.config_sha256)
            except PoolError as exc:
                report.broken[name] = str(exc)
                if not repair or "config.json" not in str(exc) or "checksum" not in str(exc):
                    continue
                # An edited config whose files still verify: repairing trusts the config on disk.
                try:
                    config, digest = verify_entry_dir(directory, name)
                except PoolError as again:
                    report.broken[name] = str(again)
                    continue
                report.broken.pop(name)
                report.reindexed.append(name)
            good.append(IndexRow(kind=kind, source=source, config_sha256=digest, meta=config))
        for kind, source, directory in self._entry_dirs():
            if (kind, source) in indexed:
                continue
            try:
                config, digest = verify_entry_dir(directory, label(kind, source))
            except PoolError as exc:
                report.unindexed[label(kind, source)] = str(exc)
                continue
            if repair:
                good.append(IndexRow(kind=kind, source=source, config_sha256=digest, meta=config))
            else:
                report.unindexed[label(kind, source)] = "verifies but has no index row (--repair adds it)"
        report.ok = [label(r.kind, r.source) for r in good]
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
                where = label(kind, source)
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
    def export(
        self,
        archive: str | os.PathLike[str],
        sources: list[str] | None = None,
        kinds: list[str] | None = None,
    ) -> Path:
        """Write the pool (or some sources / kinds) as a ``.tar.gz`` that :meth:`import_archive` reads.

        Entries are verified first, so an export never re-signs a damaged file. A source or kind asked
        for that the pool does not hold is an error (a typo would otherwise ship a smaller pool quietly).
        """
        archive = Path(archive)
        entries = self.entries()
        for asked, held, what in (
            (sources, {e.source for e in entries}, "source"),
            (kinds, {e.kind for e in entries}, "kind"),
        ):
            missing = sorted(set(asked or ()) - held)
            if missing:
                raise PoolError(
                    f"pool {self.path} has no {what} {', '.join(missing)}; see `taskscout pool list`"
                )
        chosen = [
            e for e in entries if (not sources or e.source in sources) and (not kinds or e.kind in kinds)
        ]
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
        try:
            with atomic_path(archive) as tmp, tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
                add_bytes(tar, "pool.json", json_bytes(info))
                add_bytes(tar, "index.json", json_bytes(index))
                for entry in chosen:
                    for file in sorted(entry.path.iterdir()):
                        add_bytes(tar, f"entries/{entry.kind}/{entry.source}/{file.name}", file.read_bytes())
        except OSError as exc:
            raise PoolError(f"cannot write pool archive {archive}: {exc.strerror or exc}") from None
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
            unpack_checked(archive, unpacked, max_bytes=max_bytes, max_files=max_files, max_ratio=max_ratio)
            verified = verify_archive(unpacked, archive)
            existing = {(e.kind, e.source) for e in self.entries()}
            add = [key for key in verified if overwrite or key not in existing]
            for kind, source in add:
                (stage / "new" / kind).mkdir(parents=True, exist_ok=True)
                os.replace(unpacked / "entries" / kind / source, stage / "new" / kind / source)
            if add:
                self._publish(stage, add=add, remove=[])
        return [label(*k) for k in add]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while parsing an index: the rows make no cycles, and at 10,000
    entries the collections triggered by their allocations took longer than the parsing itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _meta_dict(config: EntryConfig) -> dict[str, Any]:
    """``config.to_json_dict()`` for a config parsed from JSON, without re-serialising it.

    Listing a 10,000-entry pool spent more time in ``model_dump`` than in validation; the values of a
    config read from JSON are JSON values already. Containers are copied so an entry's ``meta`` never
    aliases the cached index.
    """
    fields = {**config.__dict__, **(config.__pydantic_extra__ or {})}
    return {k: v.copy() if isinstance(v, (dict, list)) else v for k, v in fields.items()}


_READ_ONLY = (
    "{path} is the built-in pool, which is read-only; pass a pool you own with --pool "
    "(e.g. $TASKSCOUT_HOME/pools/local)"
)


def _is_builtin(path: Path) -> bool:
    try:
        return os.path.realpath(path) == os.path.realpath(default_pool_path())
    except OSError:
        return False


def open_pool(path: str | os.PathLike[str] | None = None) -> Pool:
    """Open ``path``, or the built-in pool when ``path`` is None."""
    return Pool(default_pool_path() if path is None else path)
