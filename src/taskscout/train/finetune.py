"""Full fine-tuning of an encoder with a classification or regression head.

Used in two places: P1 of ESM-LogME (fine-tune the base encoder on each source task, then map base
embeddings to fine-tuned embeddings) and the transfer experiments that produce ground truth (fine-tune
a source-tuned encoder again on a target). The head sits on the same pooled vector the encoder produces
for ranking (mean pooling for sentence-transformers models), so what is fine-tuned is what is embedded.

Regression targets are standardised with the training mean and standard deviation (stored with the
model) so one learning rate suits targets on any scale.
"""

from __future__ import annotations

import functools
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from taskscout.configs import json_key
from taskscout.data.task import Task
from taskscout.devices import autocast, describe, grad_scaler, module_device, resolve_device
from taskscout.encode.encoder import Encoder, length_order, pool_hidden
from taskscout.encode.models import resolve_model
from taskscout.errors import TaskscoutError
from taskscout.io import atomic_dir, file_lock, read_json, sha256_file, write_json
from taskscout.train.config import TrainConfig

FORMAT_VERSION = 1

_SAVED = "finetuned.json"  # save_pretrained's metadata: present once a model directory is complete


class SequenceModel(nn.Module):
    """Encoder + pooling + dropout + linear head."""

    def __init__(
        self, encoder: nn.Module, num_outputs: int, pooling: str = "mean", dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(encoder.config.hidden_size), num_outputs)

    def pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        output = self.encoder(**batch)
        return pool_hidden(
            output.last_hidden_state,
            batch["attention_mask"],
            self.pooling,
            getattr(output, "pooler_output", None),
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.dropout(self.pooled(batch)))


@dataclass
class FineTuned:
    """A fine-tuned encoder with its head, as trained or as loaded from disk."""

    model: SequenceModel
    tokenizer: Any
    task_type: str
    config: TrainConfig
    label_names: list[str] | None
    target_mean: np.ndarray | None
    target_std: np.ndarray | None
    info: dict[str, Any]

    # ------------------------------------------------------------------ use
    def encoder(self, *, batch_size: int = 64, cache: bool = False) -> Encoder:
        """The fine-tuned encoder (without head) with the pooling it was trained with."""
        return Encoder.from_module(
            self.model.encoder,
            self.tokenizer,
            name=self.info.get("name", "finetuned"),
            fingerprint=self.info.get("fingerprint", "unsaved"),
            pooling=self.config.pooling,
            max_length=self.config.max_length,
            batch_size=batch_size,
            cache=cache,
        )

    def predict(self, task: Task, *, batch_size: int = 64) -> np.ndarray:
        """Class ids (classification) or targets in the original scale (regression)."""
        logits = batch_logits(self.model, self.encoder(batch_size=batch_size), task, batch_size)
        if self.task_type == "classification":
            return logits.argmax(axis=1)
        pred = logits * self.target_std + self.target_mean
        return pred[:, 0] if task.labels.ndim == 1 else pred

    def evaluate(self, task: Task) -> dict[str, float]:
        """Accuracy and macro-F1 (classification) or Pearson, Spearman and their mean (regression)."""
        from taskscout.train.scoring import score_predictions

        return score_predictions(task, self.predict(task))

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write encoder (safetensors), tokenizer, head and metadata atomically into ``directory``."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            self.model.encoder.save_pretrained(tmp / "encoder", safe_serialization=True)
            self.tokenizer.save_pretrained(tmp / "encoder")
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in self.model.head.state_dict().items()},
                tmp / "head.safetensors",
            )
            meta = {
                "format_version": FORMAT_VERSION,
                "task_type": self.task_type,
                "train_config": self.config.to_dict(),
                "label_names": self.label_names,
                "target_mean": None if self.target_mean is None else self.target_mean.tolist(),
                "target_std": None if self.target_std is None else self.target_std.tolist(),
                "num_outputs": self.model.head.out_features,
                "info": self.info,
                "encoder_sha256": sha256_file(tmp / "encoder" / "model.safetensors"),
            }
            write_json(tmp / _SAVED, meta)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "auto") -> FineTuned:
        """Load a model written by :meth:`save_pretrained` (checksum-verified) onto ``device``."""
        from transformers import AutoModel, AutoTokenizer

        directory = Path(directory)
        meta_path = directory / _SAVED
        if not meta_path.exists():
            raise TaskscoutError(f"{directory} is not a fine-tuned taskscout model (no finetuned.json)")
        meta = read_json(meta_path)
        weights = directory / "encoder" / "model.safetensors"
        if sha256_file(weights) != meta["encoder_sha256"]:
            raise TaskscoutError(
                f"fine-tuned model {directory} is corrupt (checksum mismatch); delete it to rebuild"
            )
        config = TrainConfig.from_dict(meta["train_config"])
        encoder = AutoModel.from_pretrained(directory / "encoder")
        model = SequenceModel(encoder, meta["num_outputs"], config.pooling, config.dropout)
        model.head.load_state_dict(load_file(directory / "head.safetensors"))
        info = dict(meta["info"])
        info["fingerprint"] = meta["encoder_sha256"][:16]
        return cls(
            model=model.to(resolve_device(device)).eval(),
            tokenizer=AutoTokenizer.from_pretrained(directory / "encoder"),
            task_type=meta["task_type"],
            config=config,
            label_names=meta["label_names"],
            target_mean=None if meta["target_mean"] is None else np.asarray(meta["target_mean"]),
            target_std=None if meta["target_std"] is None else np.asarray(meta["target_std"]),
            info=info,
        )


def load_backbone(model: str | nn.Module, tokenizer: Any = None) -> tuple[nn.Module, Any, str]:
    """An encoder module to start fine-tuning from: a hub id / directory, or a module (+ its tokenizer)."""
    if isinstance(model, nn.Module):
        if tokenizer is None:
            raise TaskscoutError("fine-tuning a model object needs its tokenizer")
        import copy

        return copy.deepcopy(model), tokenizer, getattr(model.config, "name_or_path", "module")
    from transformers import AutoModel, AutoTokenizer

    resolved = resolve_model(model)
    try:
        return (
            AutoModel.from_pretrained(resolved.location),
            AutoTokenizer.from_pretrained(resolved.location),
            resolved.name,
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TaskscoutError(f"cannot load model {model!r} to fine-tune: {first}") from None


@dataclass
class TrainingTargets:
    """Label tensor and loss for a task; regression targets standardised with the training statistics."""

    targets: torch.Tensor
    loss_fn: nn.Module
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @classmethod
    def of(cls, task: Task) -> TrainingTargets:
        if task.is_classification:
            return cls(torch.as_tensor(task.labels, dtype=torch.long), nn.CrossEntropyLoss())
        labels = task.labels.reshape(len(task), -1)
        mean = labels.mean(axis=0)
        std = np.where(labels.std(axis=0) > 0, labels.std(axis=0), 1.0)
        return cls(torch.as_tensor((labels - mean) / std, dtype=torch.float32), nn.MSELoss(), mean, std)

    def predictions(self, task: Task, logits: np.ndarray) -> np.ndarray:
        """Class ids, or regression outputs back on the original scale."""
        if self.mean is None:
            return logits.argmax(axis=1)
        pred = logits * self.std + self.mean
        return pred[:, 0] if task.labels.ndim == 1 else pred


def batch_logits(
    model: SequenceModel, tokenizer_of: Encoder, task: Task, batch_size: int = 64, *, pooled: bool = False
) -> np.ndarray:
    """Head outputs (or, with ``pooled``, the pooled features the head reads) for every row of ``task``
    (eval mode, no gradients); restores the training mode."""
    was_training = model.training
    model.eval()
    forward = model.pooled if pooled else model
    width = model.head.in_features if pooled else model.head.out_features
    result = np.zeros((len(task), width), dtype=np.float32)
    order = length_order(task.texts, task.text_pairs)  # batches of similar length pad little
    pairs = task.text_pairs
    with torch.inference_mode():
        for start in range(0, len(task), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer_of.tokenize(
                [task.texts[i] for i in idx], None if pairs is None else [pairs[i] for i in idx]
            )
            with autocast(module_device(model)):
                result[idx] = forward(batch).float().cpu().numpy()
    model.train(was_training)
    return result


def train_steps(
    model: SequenceModel,
    tokenizer_of: Encoder,
    task: Task,
    targets: TrainingTargets,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    batch_size: int,
    seed: int,
    grad_clip: float = 1.0,
    scheduler: Any = None,
    progress: bool | str = False,
    on_step: Any = None,
    on_epoch: Any = None,
) -> list[float]:
    """The one training loop: shuffled mini-batches until ``total_steps``; returns the loss per step.

    ``on_step(step)`` runs after each optimiser step and ``on_epoch(epoch)`` after each full pass, for
    callers that snapshot parameters or validate (TuPaTE's early and late task embeddings).
    """
    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    device = module_device(model)
    labels = targets.targets.to(device)
    scaler = grad_scaler(device)
    desc = progress if isinstance(progress, str) else f"fine-tuning on {task.name}"
    bar = tqdm(total=total_steps, desc=desc, unit="step", disable=not progress, leave=False)
    model.train()
    step = epoch = 0
    losses: list[float] = []
    while step < total_steps:
        order = rng.permutation(len(task))
        for start in range(0, len(task), batch_size):
            if step >= total_steps:
                break
            idx = order[start : start + batch_size]
            batch = tokenizer_of.tokenize(
                [task.texts[i] for i in idx],
                None if task.text_pairs is None else [task.text_pairs[i] for i in idx],
            )
            with autocast(device):
                loss = targets.loss_fn(model(batch).float(), labels[torch.as_tensor(idx, device=device)])
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            if grad_clip:
                nn.utils.clip_grad_norm_(params, grad_clip)
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)
                scaler.update()
            if scheduler is not None:
                scheduler.step()
            losses.append(float(loss.detach()))
            step += 1
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
            if on_step is not None:
                on_step(step)
        else:
            epoch += 1
            if on_epoch is not None:
                on_epoch(epoch)
    bar.close()
    model.eval()
    return losses


def fit_probe_head(model: SequenceModel, tokenizer_of: Encoder, task: Task, targets: TrainingTargets) -> None:
    """Set ``model.head`` to a linear probe on the frozen encoder's pooled features of ``task`` (LP-FT).

    Classification: multinomial logistic regression (L2, C = 1, the scikit-learn default); classes
    absent from the rows get zero weights and a bias 10 nats below the lowest fitted one, so they start
    out never predicted but can still be learned. Regression: ridge (alpha = 1) on the standardised
    targets the loss uses. Features come from the encoder in eval mode (no dropout), as at inference.
    """
    from sklearn.linear_model import LogisticRegression, Ridge

    x = batch_logits(model, tokenizer_of, task, pooled=True).astype(np.float64)
    out_features = model.head.out_features
    weight = np.zeros((out_features, x.shape[1]))
    bias = np.zeros(out_features)
    y = targets.targets.numpy()
    if targets.mean is None:
        present = np.unique(y)
        if len(present) < 2:
            return  # one class: nothing to discriminate, keep the random head
        probe = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
        coef, intercept = probe.coef_, probe.intercept_
        if len(present) == 2:  # scikit-learn's binary model: one row of log-odds for the second class
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        bias[:] = intercept.min() - 10.0
        weight[present], bias[present] = coef, intercept
    else:
        probe = Ridge(alpha=1.0).fit(x, y.reshape(len(y), -1))
        weight[:], bias[:] = probe.coef_.reshape(out_features, -1), probe.intercept_
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(weight, dtype=model.head.weight.dtype))
        model.head.bias.copy_(torch.as_tensor(bias, dtype=model.head.bias.dtype))


def warmup_then_linear_decay(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor of optimizer step ``step`` (0-based): linear warm-up to 1 over ``warmup_steps``
    steps, then linear decay to 0 at ``total_steps``.

    Not ``transformers.get_linear_schedule_with_warmup``, on purpose: its warm-up factor is
    ``step / warmup`` (the first step runs at learning rate 0), this one's ``(step + 1) / warmup``. The two
    agree exactly without warm-up (``warmup_steps=0``, small-v1) and differ at every warm-up step
    otherwise (v2: source models and transfer runs). Fine-tuned models are cached by their config, not
    by code, so switching would silently mix models trained under two schedules in one cache and in
    one benchmark; tests/test_finetune.py pins both facts.
    """
    if step < warmup_steps:
        return (step + 1) / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def finetune(
    task: Task,
    base: str | nn.Module,
    config: TrainConfig | None = None,
    *,
    tokenizer: Any = None,
    progress: bool | str = False,
    info: dict[str, Any] | None = None,
    device: str | torch.device = "auto",
) -> FineTuned:
    """Fine-tune ``base`` (hub id, directory, or module with ``tokenizer``) on ``task``; all weights train.

    ``device``: where to train (:func:`taskscout.devices.resolve_device`; mixed precision on CUDA).
    """
    config = config or TrainConfig()
    if len(task) == 0:
        raise TaskscoutError(f"task {task.name!r} has no rows to fine-tune on")
    target_device = resolve_device(device)
    torch.manual_seed(config.seed)
    encoder, tokenizer, base_name = load_backbone(base, tokenizer)
    model = SequenceModel(encoder, task.num_classes, config.pooling, config.dropout).to(target_device)
    targets = TrainingTargets.of(task)
    steps_per_epoch = math.ceil(len(task) / config.batch_size)
    total_steps = max(1, int(round(config.epochs * steps_per_epoch)))
    warmup = int(config.warmup_ratio * total_steps)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    # The fused kernel does AdamW's update in one pass over all parameters: same formula, rounding
    # within 1 ulp of the per-tensor loop, ~6x less optimiser time on the CPU, where the per-tensor
    # loop over the 11.7M-row word embeddings took a sixth of a transfer run.
    fused = target_device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(warmup_then_linear_decay, warmup_steps=warmup, total_steps=total_steps)
    )
    helper = Encoder.from_module(
        encoder, tokenizer, name=base_name, fingerprint="train", max_length=config.max_length, cache=False
    )
    started = time.perf_counter()
    if config.head_init == "probe":
        fit_probe_head(model, helper, task, targets)
    losses = train_steps(
        model,
        helper,
        task,
        targets,
        optimizer,
        total_steps=total_steps,
        batch_size=config.batch_size,
        seed=config.seed,
        grad_clip=config.grad_clip,
        scheduler=scheduler,
        progress=progress,
    )
    meta = {
        "name": f"{base_name}+{task.name}",
        "base_model": base_name,
        "task": task.name,
        "num_examples": len(task),
        "task_fingerprint": task.fingerprint(),
        "train_seconds": round(time.perf_counter() - started, 2),
        "steps": total_steps,
        "final_loss": float(np.mean(losses[-10:])) if losses else None,
        "losses": [round(x, 5) for x in losses[:: max(1, len(losses) // 200)]],
        "torch_version": torch.__version__,
        **describe(target_device),
    }
    meta.update(info or {})
    return FineTuned(
        model=model,
        tokenizer=tokenizer,
        task_type=task.task_type,
        config=config,
        label_names=task.label_names if task.is_classification else None,
        target_mean=targets.mean,
        target_std=targets.std,
        info=meta,
    )


def finetuned_model_dir(task: Task, base: str, config: TrainConfig) -> Path:
    """Where the model fine-tuned from ``base`` on ``task`` with ``config`` is cached.

    The key covers the exact base weights, the exact rows and labels, and every hyper-parameter, so a
    cached model is reused exactly when retraining would reproduce it.
    """
    from taskscout import paths

    resolved = resolve_model(base)
    key = json_key([resolved.fingerprint, task.fingerprint(), config.to_dict()], 12)
    return paths.subdir("models") / f"{task.name}-{key}"


def is_finetuned(task: Task, base: str, config: TrainConfig | None = None) -> bool:
    """Whether :func:`load_or_finetune` would load (base, task, config) from the cache, not train it."""
    return (finetuned_model_dir(task, base, config or TrainConfig()) / _SAVED).exists()


def load_or_finetune(
    task: Task,
    base: str,
    config: TrainConfig | None = None,
    *,
    progress: bool | str = False,
    info: dict[str, Any] | None = None,
    device: str | torch.device = "auto",
) -> FineTuned:
    """The cached fine-tuned model for (base, task, config), training and saving it if needed.

    The cache key ignores ``device``: a model trained on a GPU is reused on the CPU and vice versa.
    """
    config = config or TrainConfig()
    directory = finetuned_model_dir(task, base, config)
    # Parallel workers (transfer shards, a pool build) may want the same model: the lock makes the
    # second one wait and load what the first trained instead of training it again.
    with file_lock(directory.with_name(directory.name + ".lock")):
        if (directory / _SAVED).exists():
            try:
                return FineTuned.from_pretrained(directory, device=device)
            except TaskscoutError:
                shutil.rmtree(directory, ignore_errors=True)  # corrupt cache entry: retrain below
        model = finetune(task, base, config, progress=progress, info=info, device=device)
        model.save_pretrained(directory)
    model.info["fingerprint"] = sha256_file(directory / "encoder" / "model.safetensors")[:16]
    return model
