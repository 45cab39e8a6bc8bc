"""The on-disk cache of tuned embeddings under ``$TASKSCOUT_HOME/tupate``, keyed by (base weights,
rows and labels, variant, protocol)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from torch import nn

from taskscout.configs import json_key
from taskscout.data.task import Task
from taskscout.methods.tupate.config import TunedEmbeddings, TuPaTEConfig
from taskscout.methods.tupate.training import tune


def _cache_file(task: Task, fingerprint: str, variant: str, config: TuPaTEConfig, validation: Task | None):
    from taskscout import paths

    validation_key = None if validation is None else validation.fingerprint()
    key = json_key([fingerprint, task.fingerprint(), validation_key, variant, config.to_dict()], 16)
    return paths.subdir("tupate") / f"{task.name}-{variant}-{key}.safetensors"


def tuned_embeddings(
    task: Task,
    base: str | nn.Module,
    variant: str,
    config: TuPaTEConfig,
    *,
    fingerprint: str,
    tokenizer: Any = None,
    validation: Task | None = None,
    progress: bool | str = False,
    device: Any = None,
) -> TunedEmbeddings:
    """:func:`tune` (on ``device``), cached on disk by (base weights ``fingerprint``, rows, variant, config).

    The key ignores the device: embeddings tuned on a GPU are reused on the CPU and vice versa.
    """
    from safetensors.numpy import load_file, save_file

    from taskscout.io import atomic_path

    file = _cache_file(task, fingerprint, variant, config, validation)
    if file.exists():
        try:
            from safetensors import safe_open

            with safe_open(str(file), framework="np") as handle:
                info = json.loads((handle.metadata() or {}).get("info", "{}"))
            arrays = load_file(file)
            return TunedEmbeddings(arrays["early"], arrays.get("late"), info)
        except (OSError, ValueError, KeyError):
            file.unlink(missing_ok=True)  # a damaged cache file: recompute below
    result = tune(
        task,
        base,
        variant,
        config,
        tokenizer=tokenizer,
        validation=validation,
        progress=progress,
        device=device,
    )
    arrays = {"early": result.early.astype(np.float32)}
    if result.late is not None:
        arrays["late"] = result.late.astype(np.float32)
    with atomic_path(file) as tmp:
        save_file(arrays, str(tmp), metadata={"info": json.dumps(result.info)})
    return result
