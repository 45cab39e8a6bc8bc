"""The source pool: a directory of per-source representations (ESMs, ...) with an index.

Layout::

    POOL/
      pool.json                    # format, description, how it was built
      index.json                   # a summary row per entry (derived: `reindex` rebuilds it)
      entries/<kind>/<source>/     # one entry: its files and config.json (with their sha256)

An entry's own ``config.json`` is the source of truth; ``index.json`` lets ``list``, filters and ranking
find entries without opening every file. Writes are atomic and serialised by a lock file, so an
interrupted build or two concurrent builders never leave a half-written entry or a lost index row.
Loading verifies checksums; a broken entry is reported and skipped, never fatal to a ranking.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskscout import paths
from taskscout.errors import PoolError
from taskscout.io import file_lock, read_json, sha256_file, write_json

POOL_FORMAT = "taskscout-pool"
POOL_FORMAT_VERSION = 1
TEXT_HASHES = "text_hashes.npy"


def default_pool_path() -> Path:
    """The pool used when none is given: the built-in one shipped in the package."""
    return Path(__file__).resolve().parent.parent / "pool_data" / "default"


def user_pool_path(name: str = "local") -> Path:
    """A writable pool under ``$TASKSCOUT_HOME/pools``."""
    return paths.subdir("pools") / name


@dataclass(frozen=True)
class PoolEntry:
    """One source's representation of one kind (``esm``, ...), as listed in the index."""

    pool: Path
    kind: str
    source: str
    meta: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.pool / "entries" / self.kind / self.source

    @property
    def base_model(self) -> str:
        return str(self.meta.get("base_model_name", ""))

    @property
    def dim(self) -> int:
        return int(self.meta.get("esm_embedding_dim") or self.meta.get("embedding_dim") or 0)

    def verify(self) -> None:
        """Raise :class:`PoolError` if a file is missing or its checksum differs from the index."""
        for name, digest in self.meta.get("files", {}).items():
            file = self.path / name
            if not file.exists():
                raise PoolError(f"pool entry {self.kind}/{self.source}: file {name} is missing")
            if sha256_file(file) != digest:
                raise PoolError(f"pool entry {self.kind}/{self.source}: checksum mismatch in {name}")

    def load_array(self, name: str) -> np.ndarray:
        """A ``.npy`` file of this entry, checksums verified; any problem is a one-line :class:`PoolError`."""
        self.verify()
        try:
            return np.load(self.path / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise PoolError(
                f"pool entry {self.kind}/{self.source}: unreadable {name} ({type(exc).__name__}); "
                "rebuild the entry"
            ) from None

    def load_tensors(self, name: str) -> dict[str, np.ndarray]:
        """A ``.safetensors`` file of this entry, checksums verified; problems raise :class:`PoolError`."""
        from safetensors.numpy import load_file

        self.verify()
        try:
            return load_file(str(self.path / name))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise PoolError(
                f"pool entry {self.kind}/{self.source}: unreadable {name} ({exc}); rebuild the entry"
            ) from None

    def text_hashes(self) -> np.ndarray:
        """Sorted 64-bit hashes of (a sample of) the source's normalised texts; empty if not stored."""
        file = self.path / TEXT_HASHES
        if not file.exists():
            return np.zeros(0, dtype=np.uint64)
        return np.load(file, allow_pickle=False)


class Pool:
    """A source pool directory. ``Pool(path)`` opens one; ``Pool.create(path)`` makes a new one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        info_file = self.path / "pool.json"
        if not info_file.exists():
            raise PoolError(
                f"{self.path} is not a taskscout pool (no pool.json); create one with `taskscout pool build`"
            )
        try:
            self.info = read_json(info_file)
        except ValueError:
            raise PoolError(f"{info_file} is not valid JSON; restore it or rebuild the pool") from None
        if self.info.get("format") != POOL_FORMAT:
            raise PoolError(f"{info_file} is not a taskscout pool file (format {self.info.get('format')!r})")

    @classmethod
    def create(cls, path: str | Path, description: str = "", exist_ok: bool = True) -> Pool:
        path = Path(path).expanduser()
        if (path / "pool.json").exists():
            if not exist_ok:
                raise PoolError(f"a pool already exists at {path}")
            return cls(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(
            path / "pool.json",
            {
                "format": POOL_FORMAT,
                "format_version": POOL_FORMAT_VERSION,
                "description": description,
                "build": {},
            },
        )
        write_json(path / "index.json", {"entries": []})
        return cls(path)

    @classmethod
    def open_or_create(cls, path: str | Path) -> Pool:
        return cls.create(path, exist_ok=True)

    # ------------------------------------------------------------------ index
    def _locked(self) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.path / ".lock")

    def _read_index(self) -> list[dict[str, Any]]:
        index_file = self.path / "index.json"
        if not index_file.exists():
            return self._scan()
        try:
            return list(read_json(index_file)["entries"])
        except (ValueError, KeyError):
            # A damaged index is derived data: rebuild it from the entries themselves.
            return self._scan()

    def _write_index(self, rows: list[dict[str, Any]]) -> None:
        rows = sorted(rows, key=lambda r: (r["kind"], r["source"]))
        write_json(self.path / "index.json", {"entries": rows})

    def _scan(self) -> list[dict[str, Any]]:
        rows = []
        for config in sorted((self.path / "entries").glob("*/*/config.json")):
            try:
                meta = read_json(config)
            except ValueError:
                continue
            rows.append({"kind": config.parent.parent.name, "source": config.parent.name, **meta})
        return rows

    def reindex(self) -> int:
        """Rebuild ``index.json`` from the entries on disk; returns the number of entries."""
        with self._locked():
            rows = self._scan()
            self._write_index(rows)
        return len(rows)

    def entries(
        self,
        kind: str | None = None,
        *,
        base_model: str | None = None,
        language: str | None = None,
        task_type: str | None = None,
    ) -> list[PoolEntry]:
        """Entries, optionally filtered by kind, base model, language and task type."""
        out = []
        for row in self._read_index():
            meta = {k: v for k, v in row.items() if k not in ("kind", "source")}
            entry = PoolEntry(self.path, row["kind"], row["source"], meta)
            if kind and entry.kind != kind:
                continue
            if base_model and entry.base_model != base_model:
                continue
            if language and meta.get("language") != language:
                continue
            if task_type and meta.get("task_type") != task_type:
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

    # ------------------------------------------------------------------ changes
    def add(self, kind: str, source: str, staged: Path) -> PoolEntry:
        """Move a fully written entry directory ``staged`` into the pool and index it.

        ``staged`` must hold ``config.json``; checksums of every other file are recorded in the index.
        """
        _check_name(source)
        meta = read_json(staged / "config.json")
        meta["files"] = {f.name: sha256_file(f) for f in sorted(staged.iterdir()) if f.name != "config.json"}
        # The entry's own config.json carries the checksums too, so a rebuilt index can still verify.
        write_json(staged / "config.json", meta)
        target = self.path / "entries" / kind / source
        with self._locked():
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            shutil.move(str(staged), str(target))
            rows = [r for r in self._read_index() if not (r["kind"] == kind and r["source"] == source)]
            rows.append({"kind": kind, "source": source, **meta})
            self._write_index(rows)
        return PoolEntry(self.path, kind, source, meta)

    def remove(self, source: str, kind: str | None = None) -> int:
        """Remove a source's entries (of one kind, or all kinds); returns how many were removed."""
        with self._locked():
            rows = self._read_index()
            keep, gone = [], []
            for row in rows:
                (gone if row["source"] == source and (kind is None or row["kind"] == kind) else keep).append(
                    row
                )
            for row in gone:
                shutil.rmtree(self.path / "entries" / row["kind"] / row["source"], ignore_errors=True)
            self._write_index(keep)
        if not gone:
            raise PoolError(f"pool {self.path} has no entry for {source!r}; see `taskscout pool list`")
        return len(gone)

    def update_info(self, **fields: Any) -> None:
        with self._locked():
            self.info.update(fields)
            write_json(self.path / "pool.json", self.info)

    # ------------------------------------------------------------------ sharing
    def export(self, archive: str | Path, sources: list[str] | None = None) -> Path:
        """Write the pool (or some sources) as a ``.tar.gz`` that ``import_archive`` reads."""
        archive = Path(archive)
        from taskscout.io import atomic_path

        with atomic_path(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:
            tar.add(self.path / "pool.json", arcname="pool.json")
            for entry in self.entries():
                if sources and entry.source not in sources:
                    continue
                tar.add(entry.path, arcname=f"entries/{entry.kind}/{entry.source}")
        return archive

    def import_archive(self, archive: str | Path, *, overwrite: bool = False) -> list[str]:
        """Add the entries of an exported archive; entries whose checksums fail are rejected."""
        import tempfile

        archive = Path(archive)
        if not archive.exists():
            raise PoolError(f"pool archive {archive} does not exist")
        added = []
        with tempfile.TemporaryDirectory(dir=self.path) as tmp:
            try:
                with tarfile.open(archive, "r:*") as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise PoolError(f"cannot read pool archive {archive}: {exc}") from None
            imported = Pool(tmp) if (Path(tmp) / "pool.json").exists() else None
            if imported is None:
                raise PoolError(f"{archive} is not a taskscout pool archive (no pool.json)")
            for row in imported._scan():
                staged = Path(tmp) / "entries" / row["kind"] / row["source"]
                if self.has(row["kind"], row["source"]) and not overwrite:
                    continue
                digest = row.get("sha256")
                weights = staged / "esm.safetensors"
                if digest and weights.exists() and sha256_file(weights) != digest:
                    raise PoolError(
                        f"{archive}: entry {row['kind']}/{row['source']} fails its checksum; not imported"
                    )
                self.add(row["kind"], row["source"], staged)
                added.append(f"{row['kind']}/{row['source']}")
        return added


def _check_name(source: str) -> None:
    if not source or "/" in source or source.startswith(".") or json.dumps(source) != f'"{source}"':
        raise PoolError(f"invalid source name {source!r}: use letters, digits, '_', '-' and '.'")


def open_pool(path: str | Path | None = None) -> Pool:
    """Open ``path``, or the built-in pool when ``path`` is None."""
    return Pool(default_pool_path() if path is None else path)
