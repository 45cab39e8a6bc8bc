"""What a method's P1 step receives from a pool build: the build's configuration, the base encoder
loaded once for all methods, and the deterministic samples of a source.

It lives apart from :mod:`taskscout.pool.build` (the P1 driver, which imports the methods) so that
methods can use it without importing the driver: imports only point down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taskscout.data.task import Task
from taskscout.encode.encoder import Encoder
from taskscout.pool.config import BuildConfig
from taskscout.train.finetune import FineTuned, is_finetuned, load_or_finetune

__all__ = ["BuildContext", "source_samples"]


def source_samples(task: Task, config: BuildConfig) -> tuple[Task, Task, Task | None]:
    """(fine-tuning rows, ESM fit texts, held-out evaluation rows) of a source, deterministic in the seed.

    The training rows are a subset of the fit texts (both are prefixes of the same stratified order);
    evaluation rows come from outside the fit texts when the task is large enough.
    """
    fit = task.subsample(config.max_fit_texts, seed=config.seed)
    train = fit.subsample(config.max_train_rows, seed=config.seed)
    held = None
    if len(task) > len(fit) + 20:
        rest_mask = np.ones(len(task), dtype=bool)
        fit_set = set(zip(fit.texts, fit.text_pairs or [None] * len(fit), strict=True))
        for i, text in enumerate(task.texts):
            if (text, None if task.text_pairs is None else task.text_pairs[i]) in fit_set:
                rest_mask[i] = False
        rest = task.select(np.flatnonzero(rest_mask))
        if len(rest) >= 20 and (not rest.is_classification or len(np.unique(rest.labels)) >= 2):
            held = rest.subsample(config.max_eval_rows, seed=config.seed + 1)
    return train, fit, held


@dataclass
class BuildContext:
    """What P1 steps of every method share during one build: the config and the loaded base encoder."""

    config: BuildConfig
    device: str = "auto"  # where fine-tuning, embedding and PEFT tuning run (taskscout.devices)
    _encoder: Encoder | None = None

    @property
    def base_encoder(self) -> Encoder:
        """The base encoder of the build, loaded on first use and shared by every method."""
        if self._encoder is None:
            self._encoder = Encoder(
                self.config.model,
                pooling=self.config.train.pooling,
                max_length=self.config.train.max_length,
                device=self.device,
            )
        return self._encoder

    def has_source_model(self, task: Task) -> bool:
        """Whether the source's fine-tuned model is cached on this machine (nothing left to train)."""
        train, _, _ = source_samples(task, self.config)
        return is_finetuned(train, self.config.model, self.config.train)

    def source_model(self, task: Task, *, progress: bool = False) -> FineTuned:
        """The base encoder fine-tuned on the source's training sample (cached on disk)."""
        train, _, _ = source_samples(task, self.config)
        return load_or_finetune(
            train,
            self.config.model,
            self.config.train,
            progress=f"{task.name}: fine-tuning" if progress else False,
            device=self.device,
        )
