"""One pool entry: its typed metadata, checksum verification and validated array loading.

Every reader of a pool entry goes through :class:`PoolEntry` (``load_array``, ``load_tensors``,
``text_hashes``), which verifies the entry's ``config.json`` against the checksum in the index and each
file against the checksum in the config, and validates dtypes, shapes and finiteness. Problems are
one-line :class:`~taskscout.errors.PoolError` naming the entry.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskscout.errors import PoolError
from taskscout.io import sha256_bytes, sha256_file
from taskscout.pool.schema import CONFIG_FILE, EntryConfig, check_name, parse_config

TEXT_HASHES = "text_hashes.npy"


def label(kind: str, source: str) -> str:
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
_VERIFIED_MAX = 65_536  # more than a 10,000-entry pool's entries: a ranking hashes each entry once


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
        return label(self.kind, self.source)

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
            if len(_VERIFIED) > _VERIFIED_MAX:
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
