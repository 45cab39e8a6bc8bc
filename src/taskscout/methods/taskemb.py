"""TaskEmb (Vu et al., EMNLP 2020): task embeddings from the Fisher information of a fine-tuned model.

A task is represented by the diagonal empirical Fisher information of a model fine-tuned on it. The
Fisher can be taken with respect to the weights (one component per parameter tensor) or to the *outputs
of each layer*; this module uses layer outputs, which keeps a source at D floats per layer instead of a
model-sized vector. For component ``c`` (the embedding layer's output, then each Transformer layer's
output) with hidden states ``h_c(x) in R^{T x D}``,

    F_c = 1/N sum_i  1/T_i sum_t  (d loss(x_i, y_i) / d h_{c,t}(x_i))^2          (in R^D)

with the *true* labels (empirical Fisher), the model in evaluation mode (no dropout), the average over the
non-padding tokens ``t`` of each example, and the loss the model was fine-tuned with (cross-entropy, or MSE
on standardised targets). Per-example gradients come from one backward pass per batch: an example's loss
depends only on its own hidden states.

Ranking: cosine of target and source per component, then reciprocal rank fusion over components,
``score(s) = sum_c 1 / (60 + rank_c(s))`` with ``rank_c(s)`` = 1 for the source most similar in component
``c`` (ties get their average rank). Higher is better.

P1 uses the source model the pool build fine-tunes anyway (``BuildContext.source_model``, cached) and
its training rows (at most ``fisher_rows``). P2 fine-tunes the base encoder on the target exactly as the
sources were fine-tuned (the protocol is stored in every entry; the model is cached on disk and shared
with CurveGrad's P2), then computes the target's Fisher the same way.

Size: (layers + 1) components of D floats: 7 x 384 for MiniLM-L6 (2,688 values, 10.8 KB as float32
per source), 13 x 768 for BERT-base. A full-parameter Fisher would be the model's size (90 MB per source
for MiniLM-L6 in float32); layer outputs are the reduction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from taskscout.data.task import Task
from taskscout.errors import TaskscoutError
from taskscout.io import write_json
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target, cosine
from taskscout.methods.fusion import reciprocal_rank_fusion_matrix
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.config import BuildConfig
    from taskscout.pool.context import BuildContext
    from taskscout.train.finetune import FineTuned

FISHER_FILE = "taskemb.safetensors"


@dataclass(frozen=True)
class TaskEmbConfig:
    """How many rows the Fisher is averaged over, and the batch size of its forward/backward passes."""

    fisher_rows: int = 256
    batch_size: int = 32


# ---------------------------------------------------------------------------------------------- pure parts
# ---------------------------------------------------------------------------------------------- Fisher
def layer_output_fisher(
    tuned: FineTuned, task: Task, *, batch_size: int = 32, progress: bool | str = False
) -> dict[str, np.ndarray]:
    """Diagonal empirical Fisher of ``tuned``'s loss w.r.t. each layer output, averaged over tokens and rows.

    Returns ``{"embeddings": F_0, "layer.0": F_1, ...}``, each of length D (float64).
    """
    from taskscout.encode.encoder import pool_hidden

    model = tuned.model.eval()
    helper = tuned.encoder(batch_size=batch_size)
    classification = tuned.task_type == "classification"
    if classification:
        targets = torch.as_tensor(task.labels, dtype=torch.long)
    else:
        labels = task.labels.reshape(len(task), -1)
        targets = torch.as_tensor((labels - tuned.target_mean) / tuned.target_std, dtype=torch.float32)
    sums: list[torch.Tensor] | None = None
    bar = tqdm(
        total=len(task),
        desc=progress if isinstance(progress, str) else "Fisher",
        unit="row",
        disable=not progress,
        leave=False,
    )
    for start in range(0, len(task), batch_size):
        stop = start + batch_size
        batch = helper.tokenize(
            task.texts[start:stop], None if task.text_pairs is None else task.text_pairs[start:stop]
        )
        output = model.encoder(**batch, output_hidden_states=True)
        pooled = pool_hidden(
            output.last_hidden_state,
            batch["attention_mask"],
            model.pooling,
            getattr(output, "pooler_output", None),
        )
        logits = model.head(pooled)
        y = targets[start:stop]
        if classification:
            loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        else:
            loss = 0.5 * torch.sum((logits - y) ** 2)
        grads = torch.autograd.grad(loss, output.hidden_states)
        mask = batch["attention_mask"].unsqueeze(-1).to(torch.float64)
        counts = mask.sum(dim=1).clamp(min=1.0)
        per_component = [((g.double() ** 2) * mask).sum(dim=1).div(counts).sum(dim=0) for g in grads]
        sums = per_component if sums is None else [a + b for a, b in zip(sums, per_component, strict=True)]
        bar.update(len(y))
    bar.close()
    if sums is None:
        raise TaskscoutError(f"task {task.name!r} has no rows to compute a Fisher on")
    names = ["embeddings"] + [f"layer.{i}" for i in range(len(sums) - 1)]
    return {name: (total / len(task)).numpy() for name, total in zip(names, sums, strict=True)}


def finetune_protocol(build: BuildConfig) -> dict[str, Any]:
    """What a target must be fine-tuned with to be comparable with the sources of a pool build."""
    return {"train": build.train.to_dict(), "max_train_rows": build.max_train_rows, "seed": build.seed}


def target_finetuned(target: Target, protocol: dict[str, Any], *, progress: bool = False) -> tuple[Any, Task]:
    """The base encoder fine-tuned on the target's rows as the sources were (cached on disk), and the rows."""
    from taskscout.train.finetune import TrainConfig, load_or_finetune

    config = TrainConfig.from_dict(protocol["train"])
    rows = target.task.subsample(int(protocol["max_train_rows"]), seed=int(protocol["seed"]))
    tuned = load_or_finetune(
        rows,
        target.encoder.name,
        config,
        progress="fine-tuning the target" if progress else False,
        device=target.device,
    )
    return tuned, rows


# ---------------------------------------------------------------------------------------------- method
class TaskEmb(SelectionMethod):
    """TaskEmb: layer-output Fisher embeddings of fine-tuned models; per-layer cosine, rank fusion."""

    name = "taskemb"
    kind = "taskemb"
    description = "Fisher task embeddings of fine-tuned models (per-layer cosine, reciprocal rank fusion)"
    p1_cost = "one forward/backward pass over <= 256 rows of the (cached) fine-tuned source model"
    p2_cost = "fine-tune the base encoder on the target (as the sources), Fisher pass, cosines per source"

    def __init__(self, config: TaskEmbConfig | None = None) -> None:
        self.config = config or TaskEmbConfig()

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """Fisher of the fine-tuned source model on (up to ``fisher_rows`` of) its training rows."""
        from safetensors.numpy import save_file

        from taskscout.pool.context import source_samples

        train, _, _ = source_samples(task, context.config)
        tuned = context.source_model(task, progress=progress)
        rows = train.subsample(self.config.fisher_rows, seed=context.config.seed)
        fisher = layer_output_fisher(
            tuned,
            rows,
            batch_size=self.config.batch_size,
            progress=f"{task.name}: Fisher" if progress else False,
        )
        save_file({k: v.astype(np.float32) for k, v in fisher.items()}, str(out_dir / FISHER_FILE))
        protocol = {
            **finetune_protocol(context.config),
            "fisher_rows": self.config.fisher_rows,
            "batch_size": self.config.batch_size,
        }
        meta = {
            "taskemb": protocol,
            "taskemb_components": list(fisher),
            "taskemb_num_rows": len(rows),
            "embedding_dim": int(next(iter(fisher.values())).size),
        }
        write_json(out_dir / "config.json", meta)

    def check_entry(self, entry: PoolEntry, target: Target) -> str | None:
        return None if isinstance(entry.meta.get("taskemb"), dict) else "not a TaskEmb entry"

    def load_entry(
        self, entry: PoolEntry, target: Target, *, progress: bool = False
    ) -> dict[str, np.ndarray]:
        return entry.load_tensors(FISHER_FILE)

    def protocol(self, entry: PoolEntry) -> dict[str, Any]:
        return entry.meta["taskemb"]

    def prepare_target(
        self, target: Target, protocol: dict[str, Any], *, progress: bool = False
    ) -> dict[str, np.ndarray]:
        tuned, rows = target_finetuned(target, protocol, progress=progress)
        fisher_rows = rows.subsample(int(protocol["fisher_rows"]), seed=int(protocol["seed"]))
        return layer_output_fisher(
            tuned,
            fisher_rows,
            batch_size=int(protocol.get("batch_size", 32)),
            progress="target Fisher" if progress else False,
        )

    def score_group(
        self, target: Target, reference: dict[str, np.ndarray], group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, list[float]]:
        sims = {}
        for loaded in group:
            vectors = loaded.data
            if set(vectors) != set(reference) or any(
                vectors[c].shape != reference[c].shape for c in reference
            ):
                out.failed[loaded.source] = "components differ from the target's (other architecture?)"
                continue
            values = [cosine(reference[c], vectors[c]) for c in reference]
            if not np.all(np.isfinite(values)):
                out.failed[loaded.source] = "a Fisher component is zero"
                continue
            sims[loaded.source] = values
        return sims

    def combine(self, raw: dict[str, list[float]]) -> dict[str, float]:
        """Reciprocal rank fusion of the per-component similarities over all scored sources."""
        if not raw:
            return {}
        names = list(raw)
        fused = reciprocal_rank_fusion_matrix(np.asarray([raw[n] for n in names]))
        return {name: float(v) for name, v in zip(names, fused, strict=True)}


METHODS = (TaskEmb,)
