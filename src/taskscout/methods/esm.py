"""Embedding Space Maps: a linear map from base-model embeddings to a fine-tuned model's embeddings.

An ESM ``f(x) = W x + b`` is fitted on a source task's texts so that ``f(base(x)) ~ finetuned(x)``. Once
fitted, it stands in for the fine-tuned model: a target's base embeddings pushed through the ESM
approximate what the source-tuned model would produce, and LogME on them approximates LogME on the
real source model, at a fraction of the cost.

Two fitters:
- ``ridge`` (default): the least-squares problem has a closed form. With centred inputs ``B`` and
  outputs ``T``, ``W^T = (B^T B + lambda I)^-1 B^T T`` and ``b = mean(T) - W mean(B)``. Exact, one D x D
  solve. ``lambda`` is a tiny multiple of the mean eigenvalue of ``B^T B``: it only guards against
  rank deficiency (e.g. fewer texts than dimensions) and changes a well-posed fit negligibly.
- ``sgd``: the ESM-LogME paper's trainer (AdamW, MSE, linear decay, gradient clipping), kept for parity
  with published ESMs.

Persistence follows ``save_pretrained``: ``esm.safetensors`` (weight, bias) + ``config.json`` with
metadata meaning-compatible with hfselect's ``ESMConfig`` and the weights' sha256.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from taskscout.configs import Config
from taskscout.errors import PoolError, TaskscoutError
from taskscout.io import atomic_dir, read_json, sha256_file, write_json

ESM_WEIGHTS = "esm.safetensors"
ESM_CONFIG = "config.json"
ESM_FORMAT = "taskscout-esm"


@dataclass
class ESMConfig(Config):
    """Metadata of an ESM. Field names follow hfselect's ``ESMConfig`` where the meaning is the same.

    Not frozen, unlike the other configs: it keys nothing and is filled in while the map is fitted.
    """

    base_model_name: str = ""
    base_model_fingerprint: str = ""
    base_model_pooling: str = "mean"
    base_model_max_length: int = 128
    task_id: str = ""
    task_subset: str | None = None
    task_split: str = "train"
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    task_type: str = "classification"
    num_classes: int = 0
    num_examples: int = 0
    seed: int = 0
    language: str = ""
    esm_architecture: str = "linear"
    esm_embedding_dim: int = 0
    esm_fit: str = "ridge"
    esm_ridge_lambda: float | None = None
    esm_num_epochs: int | None = None
    esm_batch_size: int | None = None
    esm_learning_rate: float | None = None
    esm_weight_decay: float | None = None
    esm_optimizer: str | None = None
    esm_num_fit_texts: int = 0
    esm_r2_heldout: float | None = None
    lm_num_epochs: float | None = None
    lm_batch_size: int | None = None
    lm_learning_rate: float | None = None
    lm_weight_decay: float | None = None
    lm_optimizer: str | None = None
    lm_eval: dict[str, float] = field(default_factory=dict)
    developers: str = "taskscout"
    version: str = ""


def fit_ridge(
    base: np.ndarray, tuned: np.ndarray, ridge: float = 1e-6
) -> tuple[np.ndarray, np.ndarray, float]:
    """Closed-form ridge fit ``tuned ~ base @ W.T + b``; returns ``(W, b, lambda)``.

    ``ridge`` is relative: ``lambda = ridge * trace(B^T B) / D`` with ``B`` centred, so the
    regularisation does not depend on the scale of the embeddings. The intercept is not penalised.
    """
    base = np.asarray(base, dtype=np.float64)
    tuned = np.asarray(tuned, dtype=np.float64)
    if base.ndim != 2 or tuned.ndim != 2 or len(base) != len(tuned):
        raise TaskscoutError(
            f"ESM fit needs two (N, D) arrays of equal length, got {base.shape} and {tuned.shape}"
        )
    mu_b, mu_t = base.mean(axis=0), tuned.mean(axis=0)
    bc, tc = base - mu_b, tuned - mu_t
    gram = bc.T @ bc
    lam = ridge * max(np.trace(gram) / gram.shape[0], np.finfo(np.float64).tiny)
    gram[np.diag_indices_from(gram)] += lam
    weight = np.linalg.solve(gram, bc.T @ tc).T  # (D_out, D_in)
    bias = mu_t - weight @ mu_b
    return weight, bias, float(lam)


def fit_sgd(
    base: np.ndarray,
    tuned: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.01,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ESM-LogME paper's trainer: AdamW on MSE, linear decay, gradient clipping at 1.0."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    x = torch.as_tensor(np.asarray(base, dtype=np.float32))
    y = torch.as_tensor(np.asarray(tuned, dtype=np.float32))
    layer = torch.nn.Linear(x.shape[1], y.shape[1])
    optimizer = torch.optim.AdamW(layer.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss = torch.nn.functional.mse_loss(layer(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(layer.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
    return layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()


def r2_score(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Coefficient of determination pooled over all output dimensions (1 = perfect, 0 = predicts the mean)."""
    residual = np.sum((actual - predicted) ** 2)
    total = np.sum((actual - actual.mean(axis=0)) ** 2)
    return float(1 - residual / total) if total > 0 else float("nan")


class EmbeddingSpaceMap:
    """A fitted linear ESM: ``transform(x) = x @ weight.T + bias``."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, config: ESMConfig | None = None) -> None:
        self.weight = np.ascontiguousarray(weight)
        self.bias = np.ascontiguousarray(bias)
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise TaskscoutError(
                f"ESM weight {self.weight.shape} and bias {self.bias.shape} do not fit together"
            )
        self.config = config or ESMConfig()
        self.config.esm_embedding_dim = int(self.weight.shape[0])

    @classmethod
    def fit(
        cls,
        base: np.ndarray,
        tuned: np.ndarray,
        *,
        method: str = "ridge",
        config: ESMConfig | None = None,
        heldout_fraction: float = 0.1,
        seed: int = 0,
        ridge: float = 1e-6,
        **sgd_options: Any,
    ) -> EmbeddingSpaceMap:
        """Fit on paired embeddings; R^2 is measured on a held-out ``heldout_fraction`` of rows first,
        then the final map is fitted on all rows."""
        config = config or ESMConfig()
        base = np.asarray(base, dtype=np.float64)
        tuned = np.asarray(tuned, dtype=np.float64)

        def _fit(b: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if method == "ridge":
                w, bias, lam = fit_ridge(b, t, ridge)
                config.esm_ridge_lambda = lam
                return w, bias
            if method == "sgd":
                return fit_sgd(b, t, seed=seed, **sgd_options)
            raise TaskscoutError(f"unknown ESM fit method {method!r}; use 'ridge' or 'sgd'")

        n_held = int(round(heldout_fraction * len(base)))
        if n_held >= 2 and len(base) - n_held >= 2:
            order = np.random.default_rng(seed).permutation(len(base))
            held, train = order[:n_held], order[n_held:]
            w, b = _fit(base[train], tuned[train])
            config.esm_r2_heldout = r2_score(base[held] @ w.T + b, tuned[held])
        weight, bias = _fit(base, tuned)
        config.esm_fit = method
        config.esm_num_fit_texts = len(base)
        if method == "sgd":
            config.esm_num_epochs = sgd_options.get("epochs", 10)
            config.esm_batch_size = sgd_options.get("batch_size", 32)
            config.esm_learning_rate = sgd_options.get("learning_rate", 1e-3)
            config.esm_weight_decay = sgd_options.get("weight_decay", 0.01)
            config.esm_optimizer = "AdamW"
        return cls(weight.astype(np.float32), bias.astype(np.float32), config)

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64) @ self.weight.T.astype(np.float64) + self.bias

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path, *, dtype: str = "float16") -> Path:
        """Write ``esm.safetensors`` and ``config.json`` atomically.

        fp16 halves storage; the ranking scores it changes move by far less than 1e-3.
        """
        return _save_tensors(directory, {"weight": self.weight, "bias": self.bias}, self.config, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, verify: bool = True) -> EmbeddingSpaceMap:
        """Load an ESM; a missing file, bad JSON or checksum mismatch raises :class:`PoolError`."""
        tensors, config = _load_tensors(directory, verify)
        return cls(tensors["weight"], tensors["bias"], config)


def _save_tensors(
    directory: str | Path, tensors: dict[str, np.ndarray], config: ESMConfig, dtype: str
) -> Path:
    directory = Path(directory)
    np_dtype = {"float16": np.float16, "float32": np.float32}[dtype]
    with atomic_dir(directory) as tmp:
        # safetensors writes the raw buffer: a transposed (Fortran-ordered) view would be saved
        # transposed, so force C order.
        save_file(
            {k: np.ascontiguousarray(v, dtype=np_dtype) for k, v in tensors.items()},
            str(tmp / ESM_WEIGHTS),
            metadata={"format": ESM_FORMAT},
        )
        meta = {"format": ESM_FORMAT, "sha256": sha256_file(tmp / ESM_WEIGHTS), **config.to_dict()}
        write_json(tmp / ESM_CONFIG, meta)
    return directory


def _load_tensors(directory: str | Path, verify: bool) -> tuple[dict[str, np.ndarray], ESMConfig]:
    """Read an ESM directory; a missing file, bad JSON or checksum mismatch raises :class:`PoolError`."""
    directory = Path(directory)
    try:
        meta = read_json(directory / ESM_CONFIG)
    except (OSError, ValueError) as exc:
        raise PoolError(f"ESM {directory}: cannot read {ESM_CONFIG} ({type(exc).__name__})") from None
    weights_path = directory / ESM_WEIGHTS
    if not weights_path.exists():
        raise PoolError(f"ESM {directory}: {ESM_WEIGHTS} is missing")
    if verify and sha256_file(weights_path) != meta.get("sha256"):
        raise PoolError(
            f"ESM {directory}: checksum mismatch in {ESM_WEIGHTS}; re-import or rebuild the entry"
        )
    try:
        tensors = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise PoolError(f"ESM {directory}: unreadable {ESM_WEIGHTS} ({exc})") from None
    return tensors, ESMConfig.from_dict(meta)


class ResidualMLPMap:
    """A small non-linear ESM (the paper's stated future work): ``f(x) = W x + b + V relu(U x + c)``.

    The linear part is the closed-form ridge map; the MLP (hidden width ``hidden``) is then fitted by
    AdamW to the ridge residuals, so the non-linear map is never worse than the linear one on the fit
    data and starts from it. P2 must form ``f(F)`` explicitly (no Gram identity), so it costs O(N D h).
    """

    def __init__(self, tensors: dict[str, np.ndarray], config: ESMConfig | None = None) -> None:
        self.tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        self.config = config or ESMConfig()
        self.config.esm_architecture = "residual-mlp"
        self.config.esm_embedding_dim = int(self.tensors["weight"].shape[0])

    @classmethod
    def fit(
        cls,
        base: np.ndarray,
        tuned: np.ndarray,
        *,
        hidden: int = 128,
        epochs: int = 30,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        config: ESMConfig | None = None,
        seed: int = 0,
    ) -> ResidualMLPMap:
        config = config or ESMConfig()
        base = np.asarray(base, dtype=np.float64)
        tuned = np.asarray(tuned, dtype=np.float64)
        weight, bias, lam = fit_ridge(base, tuned)
        residual = tuned - (base @ weight.T + bias)
        torch.manual_seed(seed)
        x = torch.as_tensor(base, dtype=torch.float32)
        y = torch.as_tensor(residual, dtype=torch.float32)
        mlp = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, y.shape[1])
        )
        torch.nn.init.zeros_(mlp[2].weight)  # start exactly at the ridge map
        torch.nn.init.zeros_(mlp[2].bias)
        optimizer = torch.optim.AdamW(mlp.parameters(), lr=learning_rate, weight_decay=weight_decay)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=generator).split(64):
                loss = torch.nn.functional.mse_loss(mlp(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        config.esm_ridge_lambda = lam
        config.esm_fit = "ridge+mlp"
        config.esm_num_epochs = epochs
        config.esm_learning_rate = learning_rate
        config.esm_weight_decay = weight_decay
        config.esm_optimizer = "AdamW"
        config.esm_num_fit_texts = len(base)
        tensors = {
            "weight": weight.astype(np.float32),
            "bias": bias.astype(np.float32),
            "hidden_weight": mlp[0].weight.detach().numpy(),
            "hidden_bias": mlp[0].bias.detach().numpy(),
            "out_weight": mlp[2].weight.detach().numpy(),
            "out_bias": mlp[2].bias.detach().numpy(),
        }
        return cls(tensors, config)

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        t = {k: v.astype(np.float64) for k, v in self.tensors.items()}
        x = np.asarray(embeddings, dtype=np.float64)
        hidden = np.maximum(x @ t["hidden_weight"].T + t["hidden_bias"], 0.0)
        return x @ t["weight"].T + t["bias"] + hidden @ t["out_weight"].T + t["out_bias"]

    def save_pretrained(self, directory: str | Path, *, dtype: str = "float16") -> Path:
        return _save_tensors(directory, self.tensors, self.config, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, verify: bool = True) -> ResidualMLPMap:
        tensors, config = _load_tensors(directory, verify)
        return cls(tensors, config)
