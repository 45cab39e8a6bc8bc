"""Content-addressed on-disk embedding cache (SQLite).

Key = sha256 over (encoder weights fingerprint, pooling, max_length, text, text pair), so a cached vector
is reused exactly when it would be recomputed identically, and never otherwise. SQLite gives atomic
commits (an interrupted run keeps every batch it committed) and concurrent readers for free.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from taskscout import paths
from taskscout.encode.spec import EncoderSpec

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL)"
)
_CHUNK = 500  # SQLite's limit on bound parameters is 999 in old builds


class EmbeddingCache:
    """A key -> float32 vector store in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    @classmethod
    def default(cls) -> EmbeddingCache:
        """The cache under the current ``$TASKSCOUT_HOME`` (one connection per home per process)."""
        return _cache_for(str(paths.home() / "embeddings.sqlite"))

    @staticmethod
    def text_key(spec: EncoderSpec, text: str, text_pair: str | None = None) -> str:
        digest = hashlib.sha256(spec.key().encode())
        digest.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
        if text_pair is not None:
            digest.update(b"\x01" + text_pair.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get_many(self, keys: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, row_dim, blob in rows:
                if row_dim == dim and len(blob) == 4 * dim:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(k, vectors.shape[1], vectors[i].tobytes()) for i, k in enumerate(keys)]
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (key, dim, vector) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def clear(self) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM embeddings")


@lru_cache(maxsize=8)
def _cache_for(path: str) -> EmbeddingCache:
    return EmbeddingCache(path)
