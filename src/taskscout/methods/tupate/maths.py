"""The task embedding from tuned PEFT parameters: per-layer flattening and the mean over layers."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")


def layerwise_embedding(named_params: dict[str, Any], num_layers: int) -> np.ndarray:
    """Concatenate the parameters of each Transformer layer, then average over layers.

    ``named_params`` maps parameter names (``encoder.layer.3.attention.self.query.bias``; any name with a
    ``layer.<i>.`` / ``layers.<i>.`` / ``h.<i>.`` / ``block.<i>.`` part) to tensors or arrays. Names
    without a layer index are ignored. Within a layer, tensors are flattened and concatenated in the order
    of their names with the index removed, so entry ``j`` means the same parameter in every layer and
    every task. Every layer ``0 .. num_layers - 1`` must hold the same parameter names and sizes.

    Returns ``mean_l concat_p theta_{l,p}`` as float64, of length (parameters per layer).
    """
    layers: dict[int, dict[str, np.ndarray]] = {}
    for name, value in named_params.items():
        match = _LAYER_INDEX.search(name)
        if match is None:
            continue
        key = name[: match.start(1)] + "*" + name[match.end(1) :]
        array = (
            value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        )
        layers.setdefault(int(match.group(1)), {})[key] = np.asarray(array, dtype=np.float64).ravel()
    if sorted(layers) != list(range(num_layers)):
        raise ValueError(f"expected parameters of layers 0..{num_layers - 1}, found layers {sorted(layers)}")
    keys = sorted(layers[0])
    rows = []
    for index in range(num_layers):
        if sorted(layers[index]) != keys:
            raise ValueError(f"layer {index} has other parameters than layer 0")
        rows.append(np.concatenate([layers[index][k] for k in keys]))
    if len({row.size for row in rows}) != 1:
        raise ValueError("layers hold parameters of different sizes")
    return np.mean(np.stack(rows), axis=0)
