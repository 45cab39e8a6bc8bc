"""Baselines from plain statistics of the source data: its size and its vocabulary.

* **DataSize** ranks sources by their number of training examples (the "bigger is better" prior that
  intermediate-task studies, e.g. Vu et al. 2020 and Pruksachatkun et al. 2020, compare against).
  It needs no P1 artefact: every pool entry of any kind carries ``num_examples`` in its metadata.
* **Vocabulary overlap** is the Jaccard index ``|V_s & V_t| / |V_s | V_t|`` of the sets of base-model
  tokenizer ids (WordPiece / BPE pieces, special tokens removed) occurring in the source's and the
  target's inputs (both texts of pair tasks). P1 stores the source's id set as a sorted ``uint32`` array.

The Jaccard index grows with the overlap but shrinks as either set grows, so it depends on how many rows
were tokenized: sources use the same capped sample the other P1 steps use (``max_fit_texts`` rows, 1,000
by default) and ranking caps targets at 1,000 rows, so both sides are sets from samples of similar size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taskscout.data.task import Task
from taskscout.errors import PoolError
from taskscout.io import write_json
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.context import BuildContext

VOCAB_FILE = "vocab.npy"
_TOKENIZE_BATCH = 1000


# ------------------------------------------------------------------------------------------ pure parts


def token_id_set(tokenizer: Any, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> np.ndarray:
    """Sorted unique ``uint32`` ids of the tokens in ``texts`` (and ``text_pairs``), special tokens removed.

    Inputs are tokenized whole (no truncation): the set describes the data, not what one model window sees.
    """
    found: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    for column in (texts, text_pairs):
        if column is None:
            continue
        for start in range(0, len(column), _TOKENIZE_BATCH):
            batch = list(column[start : start + _TOKENIZE_BATCH])
            ids = tokenizer(batch, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
            flat = [i for row in ids for i in row]
            found.append(np.unique(np.asarray(flat, dtype=np.int64)))
    ids = np.unique(np.concatenate(found))
    special = np.asarray(sorted(set(getattr(tokenizer, "all_special_ids", []) or [])), dtype=np.int64)
    ids = np.setdiff1d(ids, special, assume_unique=True)
    return ids.astype(np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index ``|a & b| / |a | b|`` of two id sets (arrays; 0 when both are empty)."""
    a = np.unique(a)
    b = np.unique(b)
    inter = np.intersect1d(a, b, assume_unique=True).size
    union = a.size + b.size - inter
    return float(inter / union) if union else 0.0


# ------------------------------------------------------------------------------------------ methods


class DataSize(SelectionMethod):
    """Rank sources by their number of training examples: ``score(s) = num_examples(s)``.

    ``kind`` is ``None``: the method reads the shared ``num_examples`` metadata of whatever entries the
    pool holds, so a source with entries of several kinds is scored once (the first entry's value).
    """

    name = "datasize"
    kind = None
    description = "Rank sources by their number of training examples (larger first)"
    p1_cost = "none (reads the num_examples metadata of any pool entry)"
    p2_cost = "a metadata lookup per source; the target is not used"

    needs_base_model = False

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> float:
        value = entry.meta.get("num_examples")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PoolError("entry has no num_examples metadata; rebuild it")
        if not np.isfinite(value) or value < 0:
            raise PoolError(f"entry has an invalid num_examples {value!r}; rebuild it")
        return float(value)

    def score_group(
        self, target: Target, reference: None, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        return {loaded.source: loaded.data for loaded in group}


class VocabOverlap(SelectionMethod):
    """Jaccard index of the token-id sets of source and target inputs (base-model tokenizer).

    ``score(s, t) = |V_s & V_t| / |V_s | V_t|`` where ``V`` is the set of tokenizer ids (special tokens
    removed) over all inputs of a task sample. Vocabulary overlap as a domain-similarity signal follows
    Gururangan et al. (2020, "Don't Stop Pretraining"); as a transfer baseline, e.g. Vu et al. (2020).
    """

    name = "vocab-overlap"
    kind = "vocab"
    description = "Jaccard index of the base tokenizer's token sets of source and target inputs"
    p1_cost = "tokenize up to max_fit_texts source rows; stores a sorted uint32 id array (few KB)"
    p2_cost = "tokenize the target once; one sorted-set intersection per source (< 1 ms)"

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """Tokenize the source's fit sample with the base tokenizer and store its id set."""
        from taskscout.pool.context import source_samples

        _, fit, _ = source_samples(task, context.config)
        tokenizer = context.base_encoder.tokenizer
        ids = token_id_set(tokenizer, fit.texts, fit.text_pairs)
        np.save(out_dir / VOCAB_FILE, ids, allow_pickle=False)
        write_json(
            out_dir / "config.json",
            {
                "vocab_num_tokens": int(ids.size),
                "vocab_num_texts": len(fit),
                "vocab_tokenizer_size": len(tokenizer),
            },
        )

    def check_entry(self, entry: PoolEntry, target: Target) -> str | None:
        size = entry.meta.get("vocab_tokenizer_size")
        if size is not None and size != len(target.encoder.tokenizer):
            return f"built with a tokenizer of {size} tokens, not {len(target.encoder.tokenizer)}"
        return None

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> np.ndarray:
        return entry.load_array(VOCAB_FILE, dtype_kinds="u", ndim=1)

    def prepare_target(self, target: Target, protocol: None, *, progress: bool = False) -> np.ndarray:
        return token_id_set(target.encoder.tokenizer, target.task.texts, target.task.text_pairs)

    def score_group(
        self, target: Target, reference: np.ndarray, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        return {loaded.source: jaccard(loaded.data, reference) for loaded in group}


METHODS = (DataSize, VocabOverlap)
