"""Near-duplicate detection between tasks by overlap of normalised texts.

A source that shares most of its texts with the target (the same dataset under another name, or another
labelling of the same corpus) would look like a perfect source while telling the user nothing, so
rankings exclude such sources by default. Texts are normalised (case, whitespace) and hashed to 64 bits;
pools store only these hashes, never the source texts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_SPACE = re.compile(r"\s+")


def text_hashes(texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> np.ndarray:
    """Sorted unique 64-bit hashes of the normalised inputs."""
    out = np.empty(len(texts), dtype=np.uint64)
    for i, text in enumerate(texts):
        norm = _SPACE.sub(" ", text.lower()).strip()
        if text_pairs is not None:
            norm += "\x1f" + _SPACE.sub(" ", text_pairs[i].lower()).strip()
        out[i] = int.from_bytes(
            hashlib.blake2b(norm.encode("utf-8", "replace"), digest_size=8).digest(), "little"
        )
    return np.unique(out)


def overlap_fraction(target: np.ndarray, source: np.ndarray, source_sample_fraction: float = 1.0) -> float:
    """Estimated fraction of the target's distinct texts that occur in the source.

    ``source`` may hold hashes of a random sample of the source's texts (``source_sample_fraction`` of
    them); dividing by that fraction makes the estimate unbiased. Clipped to [0, 1].
    """
    if len(target) == 0 or len(source) == 0 or source_sample_fraction <= 0:
        return 0.0
    found = np.isin(target, source, assume_unique=True).sum()
    return float(min(1.0, found / (len(target) * source_sample_fraction)))
