"""TuPaTE (Zhou, Xu, McAuley, EMNLP 2022): efficiently tuned parameters are task embeddings.

Every task (each source in P1, the target in P2) is tuned from the *same* base encoder and the *same*
seeded initial PEFT parameters with one parameter-efficient method:

- ``bitfit``: only the bias terms of the encoder train (plus the task head);
- ``lora``: rank-``r`` updates ``W + (alpha / r) B A`` of the attention query and value projections
  (r = alpha = 8, as in the paper), via peft's ``LoraConfig`` injected into the bare encoder;
- ``prefix`` (P-Tuning v2): ``m`` = 20 trainable key and value vectors per layer and attention head,
  prepended to every self-attention layer's keys and values.

The task embedding is built from the tuned PEFT parameters (never the head, whose shape depends on the
label set): with ``theta_l`` the tuned parameters of Transformer layer ``l`` flattened and concatenated
in a fixed name order, and ``theta_l^0`` their shared initial values,

    e = 1/L * sum_l (theta_l - theta_l^0)        (dimension = PEFT parameters per layer)

and a source ``s`` scores ``cos(e_target, e_s)``. The ensemble averages the three cosines.

Design decisions (see the tests for the checks):

- **Init subtraction** (``subtract_init=True``). Cosines of *raw* parameters are dominated by what every
  task shares: for BitFit the pretrained biases, for LoRA the random ``A`` matrices (``B`` starts at
  zero, and early in training ``A`` barely moves because its gradient is ``B^T (...)``), for prefixes the
  random initial prefix. All sources then score ~1 and the ranking is noise. The update
  ``theta - theta^0`` is what the task wrote into the parameters. For LoRA the update of ``B`` is ``B``
  itself; the function-space update ``Delta W = (alpha/r) B A`` would be a H x H matrix per module
  (295K per layer for MiniLM), and because ``A ~ A^0`` is shared and near-orthogonal its cosine is
  close to the cosine of the ``B`` parts, which the parameter delta already contains.
- **Same initialisation**: PEFT parameters are created right after ``torch.manual_seed(seed)`` and the
  head after ``torch.manual_seed(seed + 1)``, for sources and targets alike; the data order comes from
  ``numpy.random.default_rng(seed)``. Tuning the same rows twice gives the same embedding.
- **No weight decay on PEFT parameters**: decay pulls every task's parameters towards zero by the same
  ``lr * wd * theta^0`` per step, a shared drift that would inflate every cosine.
- **Constant learning rate** (no decay): the early embedding is then the same snapshot whether or not a
  longer "late" run follows, so early embeddings of sources built with a late budget and of targets
  tuned with the early budget only are comparable.
- **Budgets** (:class:`TuPaTEConfig`): the paper tunes 20 epochs and reports an "early" embedding after
  2 epochs (losing little, ~90% cheaper) and a "late" one at the best validation score. On this 2-core
  CPU machine one MiniLM-L6 step on 32 rows of 128 tokens costs seconds, so the default is the early
  budget only (2 epochs of the source's training sample, at least ``min_steps`` steps); set
  ``late_epochs`` (e.g. 10) to also store late embeddings (validation each epoch on the source's
  held-out rows, or on 20% of the training rows when there are none).
- **Prefixes are implemented here**, not with peft's ``PrefixTuningConfig``: peft 0.21 does run on a bare
  ``BertModel`` (task type FEATURE_EXTRACTION), but it drops ``token_type_ids`` (it warns "Token type
  ids are not supported") which breaks the segment encoding of pair tasks, and as it passes no position
  ids the encoder counts the cached prefix as past tokens and shifts every position id by its length.
  Here the prefix is passed as a ``DynamicCache`` through ``past_key_values`` (transformers 5.x BERT
  self-attention prepends cached keys and values), with the attention mask extended by ones and explicit
  ``position_ids`` from 0. Checked: a masked-out prefix reproduces the plain encoder exactly, and
  results do not depend on padding.
- The paper's per-layer sizes for BERT-base are BitFit 8.3K, LoRA 25.0K, prefix 15.4K. Here a prefix
  layer holds keys *and* values (2 x 20 x H = 30.7K for BERT-base, 15.4K for MiniLM-L6's H = 384);
  MiniLM-L6 gives BitFit 4,224 and LoRA 12,288 per layer.

Tuned embeddings are cached on disk under ``$TASKSCOUT_HOME/tupate`` by (base weights, rows and labels,
variant, protocol), so re-ranking a target, or building the ensemble after the single methods, is free.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from taskscout.data.task import Task
from taskscout.errors import PoolError, TaskscoutError
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target, cosine
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.config import BuildConfig
    from taskscout.pool.context import BuildContext

VARIANTS: tuple[str, ...] = ("bitfit", "lora", "prefix")
STAGES: tuple[str, ...] = ("early", "late")
EMBEDDINGS_FILE = "tupate.safetensors"
# The paper's grids: BitFit {1e-4, 4e-4}, LoRA {5e-4, 2e-4}, prefix {1e-2, 1e-3}; with a short CPU budget
# the larger value of each grid.
DEFAULT_LEARNING_RATES: dict[str, float] = {"bitfit": 4e-4, "lora": 5e-4, "prefix": 1e-2}
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")


@dataclass(frozen=True)
class TuPaTEConfig:
    """How a task is tuned into an embedding; sources and targets must share it (it is stored per entry).

    ``seed``, ``max_length``, ``pooling`` and ``max_rows`` are taken from the pool's ``BuildConfig`` at
    build time (``max_rows`` = its ``max_train_rows``: the target is capped to as many rows as a source).

    Budget defaults are sized for a 2-core CPU: a PEFT step of MiniLM-L6 on 32 rows of up to 128 tokens
    takes ~3.5 s single-threaded (measured), so the early budget (2 epochs; 16 steps for 256 rows, 32 for
    500) costs ~1-2 minutes per variant and task, and the paper's 20-epoch late budget ten times that.
    Late embeddings are therefore off unless ``late_epochs`` is set.
    """

    early_epochs: float = 2.0
    late_epochs: float = 0.0  # 0: no late embedding (see the module docstring for the CPU budget)
    min_steps: int = 8
    batch_size: int = 32
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES[variant]
    head_weight_decay: float = 0.01
    dropout: float = 0.1
    grad_clip: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 8
    lora_targets: tuple[str, ...] = ("query", "value")
    prefix_length: int = 20
    prefix_init_std: float = 1.0  # peft's PrefixEncoder default (nn.Embedding, N(0, 1)) without projection
    subtract_init: bool = True
    validation_fraction: float = 0.2
    max_validation_rows: int = 300
    seed: int = 0
    max_length: int = 128
    pooling: str = "mean"
    max_rows: int = 500

    def learning_rate_for(self, variant: str) -> float:
        return float(
            self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[variant]
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lora_targets"] = list(self.lora_targets)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuPaTEConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "lora_targets" in values:
            values["lora_targets"] = tuple(values["lora_targets"])
        return cls(**values)

    def for_build(self, build: BuildConfig) -> TuPaTEConfig:
        """This config with the pool build's seed, tokenisation, pooling and row cap."""
        return dataclasses.replace(
            self,
            seed=build.seed,
            max_length=build.train.max_length,
            pooling=build.train.pooling,
            max_rows=build.max_train_rows,
        )


@dataclass
class TunedEmbeddings:
    """The early (and, when computed, late) embedding of one task under one PEFT variant."""

    early: np.ndarray
    late: np.ndarray | None
    info: dict[str, Any]

    def stage(self, stage: str) -> np.ndarray | None:
        return self.early if stage == "early" else self.late


# ---------------------------------------------------------------------------------------------- pure parts
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


# ---------------------------------------------------------------------------------------------- PEFT modules
class PrefixEncoder(nn.Module):
    """P-Tuning v2 on a BERT-like encoder: trainable keys and values prepended in every self-attention.

    ``prefix`` has shape ``(layers, 2, heads, length, head_dim)`` (index 1: 0 = keys, 1 = values). The
    wrapped encoder's own weights stay frozen. Token type ids and position ids are kept as without prefix.
    """

    def __init__(self, encoder: nn.Module, length: int = 20, init_std: float = 1.0) -> None:
        super().__init__()
        config = encoder.config
        heads = int(config.num_attention_heads)
        if int(config.hidden_size) % heads:
            raise TaskscoutError("prefix tuning needs hidden_size divisible by num_attention_heads")
        self.encoder = encoder
        self.config = config
        self.length = length
        shape = (int(config.num_hidden_layers), 2, heads, length, int(config.hidden_size) // heads)
        self.prefix = nn.Parameter(torch.randn(shape) * init_std)

    def named_prefix(self) -> dict[str, torch.Tensor]:
        """Per-layer views ``layer.<i>.key`` / ``layer.<i>.value`` for :func:`layerwise_embedding`."""
        out = {}
        for index in range(self.prefix.shape[0]):
            out[f"layer.{index}.key"] = self.prefix[index, 0]
            out[f"layer.{index}.value"] = self.prefix[index, 1]
        return out

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        from transformers import DynamicCache

        batch, length = input_ids.shape
        cache = DynamicCache(config=self.config)
        for index in range(self.prefix.shape[0]):
            keys = self.prefix[index, 0].unsqueeze(0).expand(batch, -1, -1, -1)
            values = self.prefix[index, 1].unsqueeze(0).expand(batch, -1, -1, -1)
            cache.update(keys, values, index)
        mask = torch.cat([attention_mask.new_ones(batch, self.length), attention_mask], dim=1)
        positions = torch.arange(length, device=input_ids.device).unsqueeze(0).expand(batch, -1)
        return self.encoder(
            input_ids=input_ids,
            attention_mask=mask,
            token_type_ids=token_type_ids,
            position_ids=positions,
            past_key_values=cache,
            use_cache=False,
            **kwargs,
        )


def attach_peft(
    variant: str, encoder: nn.Module, config: TuPaTEConfig
) -> tuple[nn.Module, Callable[[], dict[str, torch.Tensor]]]:
    """Freeze ``encoder`` and add ``variant``'s trainable parameters (seeded); return (module, PEFT params).

    The returned function gives the live PEFT parameters by name (for snapshots and embeddings).
    """
    for param in encoder.parameters():
        param.requires_grad_(False)
    torch.manual_seed(config.seed)
    if variant == "bitfit":
        biases = {n: p for n, p in encoder.named_parameters() if n.endswith("bias")}
        if not biases:
            raise TaskscoutError("BitFit needs an encoder with bias terms; this one has none")
        for param in biases.values():
            param.requires_grad_(True)
        return encoder, lambda: biases
    if variant == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules=list(config.lora_targets),
            lora_dropout=0.0,
            bias="none",
        )
        try:
            encoder = inject_adapter_in_model(lora, encoder)
        except ValueError as exc:
            raise TaskscoutError(f"LoRA cannot be attached to this encoder: {exc}") from None
        params = {n: p for n, p in encoder.named_parameters() if "lora_" in n}
        for param in params.values():
            param.requires_grad_(True)
        return encoder, lambda: params
    if variant == "prefix":
        wrapped = PrefixEncoder(encoder, config.prefix_length, config.prefix_init_std)
        return wrapped, wrapped.named_prefix
    raise TaskscoutError(f"unknown TuPaTE variant {variant!r}; choose one of {', '.join(VARIANTS)}")


# ---------------------------------------------------------------------------------------------- tuning
def tune(
    task: Task,
    base: str | nn.Module,
    variant: str,
    config: TuPaTEConfig,
    *,
    tokenizer: Any = None,
    validation: Task | None = None,
    progress: bool | str = False,
) -> TunedEmbeddings:
    """Tune ``variant`` on ``task`` from ``base`` and return its early (and late) task embeddings.

    The loop follows :func:`taskscout.train.finetune.finetune` (same model, tokenisation, loss, AdamW,
    gradient clipping, regression standardisation), but only the PEFT parameters and the head train, the
    learning rate is constant, and snapshots of the PEFT parameters are taken at the early budget and at
    the best validation score. With ``late_epochs > 0`` and no ``validation``, 20% of the rows validate.
    """
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
    helper = Encoder.from_module(
        backbone, tokenizer, name=base_name, fingerprint="tupate", max_length=config.max_length, cache=False
    )
    num_layers = int(backbone.config.num_hidden_layers)
    encoder, peft_params = attach_peft(variant, backbone, config)
    torch.manual_seed(config.seed + 1)
    model = SequenceModel(encoder, task.num_classes, config.pooling, config.dropout)
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
    }
    if best is not None:
        info.update({"late_validation_main": round(best[0], 5), "late_epoch": best[1]})
    return TunedEmbeddings(early=early, late=None if best is None else best[2], info=info)


def _cache_file(task: Task, fingerprint: str, variant: str, config: TuPaTEConfig, validation: Task | None):
    from taskscout import paths

    key = hashlib.sha256(
        json.dumps(
            [
                fingerprint,
                task.fingerprint(),
                None if validation is None else validation.fingerprint(),
                variant,
                config.to_dict(),
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
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
) -> TunedEmbeddings:
    """:func:`tune`, cached on disk by (base weights ``fingerprint``, rows, variant, config)."""
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
    result = tune(task, base, variant, config, tokenizer=tokenizer, validation=validation, progress=progress)
    arrays = {"early": result.early.astype(np.float32)}
    if result.late is not None:
        arrays["late"] = result.late.astype(np.float32)
    with atomic_path(file) as tmp:
        save_file(arrays, str(tmp), metadata={"info": json.dumps(result.info)})
    return result


# ---------------------------------------------------------------------------------------------- methods
class TuPaTE(SelectionMethod):
    """One TuPaTE variant: cosine between the target's and each source's tuned-parameter embedding."""

    variant: str = ""
    p1_cost = "PEFT-tune the base encoder on each source (early budget: 2 epochs of <= 500 rows)"
    p2_cost = "PEFT-tune the base encoder on the target once (same budget), then one cosine per source"

    def __init__(self, config: TuPaTEConfig | None = None, stage: str = "early") -> None:
        if stage not in STAGES:
            raise TaskscoutError(f"unknown TuPaTE stage {stage!r}; choose early or late")
        self.config = config or TuPaTEConfig()
        self.stage = stage

    # ------------------------------------------------------------------ P1
    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """Tune this variant on the source's training sample and store its early (and late) embedding."""
        from safetensors.numpy import save_file

        from taskscout.encode.models import resolve_model
        from taskscout.pool.context import source_samples

        config = self.config.for_build(context.config)
        train, _, held = source_samples(task, context.config)
        result = tuned_embeddings(
            train,
            context.config.model,
            self.variant,
            config,
            fingerprint=resolve_model(context.config.model).fingerprint,
            validation=held if config.late_epochs > 0 else None,
            progress=f"{task.name}: {self.variant}" if progress else False,
        )
        arrays = {"early": result.early.astype(np.float32)}
        if result.late is not None:
            arrays["late"] = result.late.astype(np.float32)
        save_file(arrays, str(out_dir / EMBEDDINGS_FILE))
        meta = {
            "tupate_variant": self.variant,
            "tupate": config.to_dict(),
            "tupate_stages": sorted(arrays),
            "tupate_info": result.info,
            "embedding_dim": int(result.early.size),
        }
        (out_dir / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    # ------------------------------------------------------------------ P2
    def target_embedding(
        self, target: Target, config: TuPaTEConfig, *, progress: bool = False
    ) -> np.ndarray | None:
        """The target's embedding under ``config`` (tuned once, cached on disk)."""
        if self.stage == "early":
            # A constant learning rate makes the early snapshot independent of any longer run.
            config = dataclasses.replace(config, late_epochs=0.0)
        rows = target.task.subsample(config.max_rows, seed=config.seed)
        result = tuned_embeddings(
            rows,
            target.encoder.model,
            self.variant,
            config,
            tokenizer=target.encoder.tokenizer,
            fingerprint=target.encoder.spec.fingerprint,
            progress=f"target: {self.variant}" if progress else False,
        )
        return result.stage(self.stage)

    def check_entry(self, entry: PoolEntry, target: Target) -> str | None:
        if entry.meta.get("tupate_variant") != self.variant:
            return f"not a TuPaTE {self.variant} entry"
        if self.stage not in entry.meta.get("tupate_stages", ["early"]):
            return f"has no {self.stage} embedding (built without a late budget)"
        return None

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> np.ndarray:
        tensors = entry.load_tensors(EMBEDDINGS_FILE)
        if self.stage not in tensors:
            raise PoolError(f"pool entry {entry.label}: {EMBEDDINGS_FILE} has no {self.stage} embedding")
        return tensors[self.stage]

    def protocol(self, entry: PoolEntry) -> dict[str, Any]:
        protocol = dict(entry.meta.get("tupate") or {})
        if self.stage == "early":
            protocol["late_epochs"] = 0.0
        return protocol

    def prepare_target(self, target: Target, protocol: dict[str, Any], *, progress: bool = False):
        return self.target_embedding(target, TuPaTEConfig.from_dict(protocol), progress=progress)

    def score_group(
        self, target: Target, reference: np.ndarray | None, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        scores = {}
        for loaded in group:
            if reference is None or loaded.data.shape != reference.shape:
                out.failed[loaded.source] = "embedding size differs from the target's"
                continue
            value = cosine(reference, loaded.data)
            if np.isfinite(value):
                scores[loaded.source] = value
            else:
                out.failed[loaded.source] = "zero embedding (the PEFT parameters did not move)"
        return scores


class TuPaTEBitFit(TuPaTE):
    """TuPaTE with BitFit: the embedding is the per-layer mean of the tuned bias updates."""

    name = "tupate-bitfit"
    kind = "tupate-bitfit"
    variant = "bitfit"
    description = "cosine of BitFit task embeddings (tuned bias updates averaged over layers; TuPaTE)"


class TuPaTELoRA(TuPaTE):
    """TuPaTE with LoRA (r = alpha = 8 on query and value): the embedding is the per-layer mean of the
    updates of the A and B matrices."""

    name = "tupate-lora"
    kind = "tupate-lora"
    variant = "lora"
    description = "cosine of LoRA task embeddings (r=8 query/value updates averaged over layers; TuPaTE)"


class TuPaTEPrefix(TuPaTE):
    """TuPaTE with P-Tuning v2 prefixes (20 keys and values per layer): the embedding is the per-layer
    mean of the prefix updates."""

    name = "tupate-prefix"
    kind = "tupate-prefix"
    variant = "prefix"
    description = "cosine of prefix-tuning task embeddings (P-Tuning v2, 20 tokens; TuPaTE)"


class TuPaTEEnsemble(SelectionMethod):
    """TuPaTE ensemble: the mean of the BitFit, LoRA and prefix cosines (Zhou et al. 2022).

    It reads the ``tupate-lora`` entries and their ``tupate-bitfit`` / ``tupate-prefix`` siblings; a source
    missing any of the three is reported in ``failed``. Its P1 step is the LoRA one: build the pool with
    ``tupate-bitfit``, ``tupate-lora`` and ``tupate-prefix`` (a repeated LoRA build is a cache hit).
    """

    name = "tupate-ensemble"
    kind = "tupate-lora"
    description = "mean of the BitFit, LoRA and prefix TuPaTE cosines"
    p1_cost = "the three TuPaTE P1 steps (three PEFT tunings per source)"
    p2_cost = "three PEFT tunings of the target, then three cosines per source"

    def __init__(self, config: TuPaTEConfig | None = None, stage: str = "early") -> None:
        self.members: tuple[TuPaTE, ...] = (
            TuPaTEBitFit(config, stage),
            TuPaTELoRA(config, stage),
            TuPaTEPrefix(config, stage),
        )

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        self.members[1].build(task, context, out_dir, progress=progress)

    def score(self, target: Target, entries: list[PoolEntry], *, progress: bool = False) -> MethodScores:
        from taskscout.pool.store import Pool

        out = MethodScores()
        per_method: list[MethodScores] = []
        siblings: dict[tuple[Path, str], dict[str, PoolEntry]] = {}
        for member in self.members:
            chosen = []
            for entry in entries:
                if member.kind == entry.kind:
                    chosen.append(entry)
                    continue
                key = (entry.pool, str(member.kind))
                if key not in siblings:
                    try:
                        siblings[key] = {e.source: e for e in Pool(entry.pool).entries(str(member.kind))}
                    except PoolError:
                        siblings[key] = {}
                sibling = siblings[key].get(entry.source)
                if sibling is None:
                    out.failed.setdefault(entry.source, f"no {member.kind} entry (build all three variants)")
                else:
                    chosen.append(sibling)
            per_method.append(member.score(target, chosen, progress=progress))
        for entry in entries:
            source = entry.source
            if source in out.failed:
                continue
            problems = [
                f"{m.variant}: {r.failed[source]}"
                for m, r in zip(self.members, per_method, strict=True)
                if source in r.failed
            ]
            if problems:
                out.failed[source] = "; ".join(problems)
            else:
                out.scores[source] = float(np.mean([r.scores[source] for r in per_method]))
        return out


METHODS = (TuPaTEBitFit, TuPaTELoRA, TuPaTEPrefix, TuPaTEEnsemble)
