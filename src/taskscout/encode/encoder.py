"""Text encoder: a Hugging Face transformer plus a pooling rule, turning texts into fixed-size vectors.

Design points:
- Text pairs go through the tokenizer's own pair encoding (``tokenizer(texts, pairs)``), not a literal
  ``" [SEP] "`` join, so every tokenizer gets its real separator and segment ids.
- Batches are formed from length-sorted inputs (dynamic padding): on short-text datasets this cuts the
  padded tokens, and the CPU time, by several times compared with fixed-size padding.
- Results are cached on disk by content (see :mod:`taskscout.encode.cache`), so ranking the same target
  again, or embedding a source twice, costs a lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from taskscout.devices import autocast, module_device, resolve_device
from taskscout.encode.models import DEFAULT_MODEL, resolve_model
from taskscout.encode.spec import POOLINGS, EncoderSpec
from taskscout.errors import TaskscoutError


def length_order(texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> np.ndarray:
    """Row indices longest first, so batches taken in this order pad to similar lengths (character
    length is a cheap proxy for token count); stable, so equal lengths keep their input order."""
    lengths = np.array(
        [len(t) + (0 if text_pairs is None else len(text_pairs[i])) for i, t in enumerate(texts)],
        dtype=np.int64,
    )
    return np.argsort(-lengths, kind="stable")


def pool_hidden(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    pooling: str,
    pooler_output: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce token states ``(B, T, D)`` to one vector per input ``(B, D)``.

    ``mean`` averages the non-padding tokens (what sentence-transformers models were trained with),
    ``cls`` takes the first token, ``pooler`` takes BERT's pooler output (dense + tanh over [CLS]).
    """
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "pooler":
        if pooler_output is None:
            raise TaskscoutError(
                "pooling 'pooler' needs a model with a pooler layer; use --pooling mean or cls"
            )
        return pooler_output
    raise TaskscoutError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")


class Encoder:
    """Embeds texts (or text pairs) with a transformer and a pooling rule.

    Args:
        model: hub id or local directory (default: ``sentence-transformers/all-MiniLM-L6-v2``).
        pooling: ``mean`` | ``cls`` | ``pooler``.
        max_length: tokens per input after truncation.
        batch_size: inputs per forward pass.
        cache: use the on-disk embedding cache under ``$TASKSCOUT_HOME``.
        device: ``auto`` | ``cpu`` | ``cuda[:i]`` | ``mps`` (see :mod:`taskscout.devices`).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        pooling: str = "mean",
        max_length: int = 128,
        batch_size: int = 64,
        cache: bool = True,
        device: str | torch.device = "auto",
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        target_device = resolve_device(device)
        if pooling not in POOLINGS:
            raise TaskscoutError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        resolved = resolve_model(model)
        try:
            tokenizer = AutoTokenizer.from_pretrained(resolved.location)
            module = AutoModel.from_pretrained(resolved.location)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TaskscoutError(f"cannot load model {model!r}: {first}") from None
        self._setup(
            module.to(target_device),
            tokenizer,
            EncoderSpec(resolved.name, resolved.fingerprint, pooling, max_length),
            batch_size,
            cache,
        )

    @classmethod
    def from_module(
        cls,
        module: torch.nn.Module,
        tokenizer,
        *,
        name: str,
        fingerprint: str,
        pooling: str = "mean",
        max_length: int = 128,
        batch_size: int = 64,
        cache: bool = False,
    ) -> Encoder:
        """Wrap an already loaded model (a fine-tuned encoder, or a tiny test model) on its own device."""
        self = cls.__new__(cls)
        self._setup(module, tokenizer, EncoderSpec(name, fingerprint, pooling, max_length), batch_size, cache)
        return self

    def _setup(
        self, module: torch.nn.Module, tokenizer, spec: EncoderSpec, batch_size: int, cache: bool
    ) -> None:
        self.model = module.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self.batch_size = batch_size
        self.use_cache = cache

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def device(self) -> torch.device:
        """Where the model's weights live; batches are moved there."""
        return module_device(self.model)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str] | None = None,
        *,
        progress: bool | str = False,
    ) -> np.ndarray:
        """Embeddings ``(N, D)`` as float32, in input order."""
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise TaskscoutError(f"{len(texts)} texts but {len(text_pairs)} text pairs")
        n = len(texts)
        # Identical inputs are embedded once (datasets repeat texts; padding would make copies differ).
        slots: dict[tuple[str, str | None], int] = {}
        where = np.empty(n, dtype=np.int64)
        for i in range(n):
            where[i] = slots.setdefault((texts[i], None if text_pairs is None else text_pairs[i]), len(slots))
        unique = list(slots)
        vectors = np.zeros((len(unique), self.dim), dtype=np.float32)
        todo = np.arange(len(unique))
        if self.use_cache and unique:
            from taskscout.encode.cache import EmbeddingCache

            cache = EmbeddingCache.default()
            keys = [cache.text_key(self.spec, text, pair) for text, pair in unique]
            found = cache.get_many(keys, self.dim)
            hit = np.array([k in found for k in keys], dtype=bool)
            for i in np.flatnonzero(hit):
                vectors[i] = found[keys[i]]
            todo = np.flatnonzero(~hit)
        if len(todo):
            computed = self._forward_all(
                [unique[i][0] for i in todo],
                None if text_pairs is None else [unique[i][1] for i in todo],
                progress=progress,
            )
            vectors[todo] = computed
            if self.use_cache:
                cache.put_many([keys[i] for i in todo], computed)
        return vectors[where]

    def distinct_rows(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> np.ndarray:
        """Indices of the first of each group of inputs this encoder cannot tell apart, in input order.

        Inputs equal after tokenisation and truncation (case or accent variants for an uncased
        tokenizer, characters outside the vocabulary that all become ``[UNK]``, text past
        ``max_length``) get the same embedding from every model sharing the tokenizer.
        """
        ids = self._tokenize(texts, text_pairs)["input_ids"]
        first: dict[tuple[int, ...], int] = {}
        for i, row in enumerate(ids):
            first.setdefault(tuple(row), i)
        return np.fromiter(first.values(), dtype=np.int64, count=len(first))

    def encode_task(self, task, *, progress: bool | str = False) -> np.ndarray:
        """Embeddings of a :class:`~taskscout.data.task.Task`'s inputs."""
        return self.encode(task.texts, task.text_pairs, progress=progress)

    def tokenize(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Tokenize a batch with truncation to ``max_length`` and padding to the longest input; the
        tensors are on the model's device."""
        return self._tokenize(texts, text_pairs, padding=True, return_tensors="pt").to(self.device)

    def _tokenize(self, texts: Sequence[str], text_pairs: Sequence[str] | None, **options: Any) -> Any:
        # The one tokenizer call: every caller sees inputs truncated the way the model embeds them.
        return self.tokenizer(
            list(texts),
            None if text_pairs is None else list(text_pairs),
            truncation=True,
            max_length=self.spec.max_length,
            **options,
        )

    def _forward_all(
        self, texts: list[str], text_pairs: list[str] | None, *, progress: bool | str
    ) -> np.ndarray:
        order = length_order(texts, text_pairs)
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        desc = progress if isinstance(progress, str) else f"embedding with {self.name.split('/')[-1]}"
        bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not progress, leave=False)
        with torch.inference_mode(), autocast(self.device):
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenize(
                    [texts[i] for i in idx], None if text_pairs is None else [text_pairs[i] for i in idx]
                )
                output = self.model(**batch)
                pooled = pool_hidden(
                    output.last_hidden_state,
                    batch["attention_mask"],
                    self.spec.pooling,
                    getattr(output, "pooler_output", None),
                )
                result[idx] = pooled.float().cpu().numpy()
                bar.update(len(idx))
        bar.close()
        return result
