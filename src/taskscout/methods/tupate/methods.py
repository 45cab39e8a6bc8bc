"""The TuPaTE selection methods (BitFit, LoRA, prefix and their ensemble) on top of the shared loop."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taskscout.data.task import Task
from taskscout.errors import PoolError, TaskscoutError
from taskscout.io import write_json
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target, cosine
from taskscout.methods.tupate.cache import tuned_embeddings
from taskscout.methods.tupate.config import EMBEDDINGS_FILE, STAGES, TuPaTEConfig
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.context import BuildContext


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
            train.subsample(config.max_rows, seed=config.seed),
            context.config.model,
            self.variant,
            config,
            fingerprint=resolve_model(context.config.model).fingerprint,
            validation=held if config.late_epochs > 0 else None,
            progress=f"{task.name}: {self.variant}" if progress else False,
            device=context.device,
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
        write_json(out_dir / "config.json", meta)

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
            device=target.device,
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
    p2_reuses = ("tupate-bitfit", "tupate-lora", "tupate-prefix")  # their cached target tunings

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
