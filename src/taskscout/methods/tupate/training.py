"""Tuning one task with one PEFT variant from the shared initialisation: early and late embeddings."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from taskscout.data.task import Task
from taskscout.errors import TaskscoutError
from taskscout.methods.tupate.config import TunedEmbeddings, TuPaTEConfig
from taskscout.methods.tupate.maths import layerwise_embedding
from taskscout.methods.tupate.modules import attach_peft


def tune(
    task: Task,
    base: str | nn.Module,
    variant: str,
    config: TuPaTEConfig,
    *,
    tokenizer: Any = None,
    validation: Task | None = None,
    progress: bool | str = False,
    device: str | torch.device | None = None,
) -> TunedEmbeddings:
    """Tune ``variant`` on ``task`` from ``base`` and return its early (and late) task embeddings.

    ``device``: where to tune (:func:`taskscout.devices.resolve_device`; mixed precision on CUDA through
    :func:`~taskscout.train.finetune.train_steps`); None: where ``base`` already is (the CPU for a name).

    The loop follows :func:`taskscout.train.finetune.finetune` (same model, tokenisation, loss, AdamW,
    gradient clipping, regression standardisation), but only the PEFT parameters and the head train, the
    learning rate is constant, and snapshots of the PEFT parameters are taken at the early budget and at
    the best validation score. With ``late_epochs > 0`` and no ``validation``, 20% of the rows validate.
    """
    from taskscout.devices import module_device, resolve_device
    from taskscout.encode.encoder import Encoder
    from taskscout.train.finetune import (
        SequenceModel,
        TrainingTargets,
        batch_logits,
        load_backbone,
        train_steps,
    )
    from taskscout.train.scoring import score_predictions

    if len(task) == 0:
        raise TaskscoutError(f"task {task.name!r} has no rows to tune on")
    late = config.late_epochs > 0
    if late and validation is None:
        task, validation = task.split(config.validation_fraction, seed=config.seed)
    if validation is not None:
        validation = validation.subsample(config.max_validation_rows, seed=config.seed)
    backbone, tokenizer, base_name = load_backbone(base, tokenizer)
    target_device = module_device(backbone) if device is None else resolve_device(device)
    backbone = backbone.to(target_device)
    helper = Encoder.from_module(
        backbone, tokenizer, name=base_name, fingerprint="tupate", max_length=config.max_length, cache=False
    )
    num_layers = int(backbone.config.num_hidden_layers)
    encoder, peft_params = attach_peft(variant, backbone, config)
    torch.manual_seed(config.seed + 1)
    # The head (and prefix parameters) are created on the CPU: the whole model moves to the device, and
    # train_steps / batch_logits move each batch and the targets to it.
    model = SequenceModel(encoder, task.num_classes, config.pooling, config.dropout).to(target_device)
    initial = {n: p.detach().clone() for n, p in peft_params().items()}

    targets = TrainingTargets.of(task)

    lr = config.learning_rate_for(variant)
    head_decay = [model.head.weight]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and n != "head.weight"]
    optimizer = torch.optim.AdamW(
        [
            {"params": head_decay, "weight_decay": config.head_weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    steps_per_epoch = math.ceil(len(task) / config.batch_size)
    early_steps = max(config.min_steps, int(round(config.early_epochs * steps_per_epoch)))
    total_steps = max(early_steps, int(round(config.late_epochs * steps_per_epoch))) if late else early_steps

    def embedding() -> np.ndarray:
        current = peft_params()
        params = {n: current[n].detach() - initial[n] for n in current} if config.subtract_init else current
        return layerwise_embedding(params, num_layers)

    def validate() -> float:
        assert validation is not None
        logits = batch_logits(model, helper, validation)
        return float(score_predictions(validation, targets.predictions(validation, logits))["main"])

    started = time.perf_counter()
    early: np.ndarray | None = None
    best: tuple[float, int, np.ndarray] | None = None
    early_seconds = 0.0

    def on_step(step: int) -> None:
        nonlocal early, early_seconds
        if step == early_steps:
            early = embedding()
            early_seconds = time.perf_counter() - started

    def on_epoch(epoch: int) -> None:
        nonlocal best
        if late:
            score = validate()
            if best is None or score > best[0]:
                best = (score, epoch, embedding())

    # Constant learning rate (no scheduler): the early snapshot is then the same whether or not a
    # longer late run follows.
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
        progress=progress
        if isinstance(progress, str)
        else (f"{variant} on {task.name}" if progress else False),
        on_step=on_step,
        on_epoch=on_epoch,
    )
    assert early is not None
    info = {
        "variant": variant,
        "task": task.name,
        "rows": len(task),
        "learning_rate": lr,
        "early_steps": early_steps,
        "total_steps": total_steps,
        "early_seconds": round(early_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "trainable_peft_parameters": int(sum(p.numel() for p in peft_params().values())),
        "embedding_dim": int(early.size),
        "final_loss": float(np.mean(losses[-5:])) if losses else None,
        "device": str(target_device),
    }
    if best is not None:
        info.update({"late_validation_main": round(best[0], 5), "late_epoch": best[1]})
    return TunedEmbeddings(early=early, late=None if best is None else best[2], info=info)
