"""Pilot for benchmark protocol v2: what source budget and which target recipe make transfer measurable.

Three questions, each a list of jobs whose results are appended to ``benchmarks/pilot_v2/results.jsonl``
(one JSON object per finished job, keyed, so the script is resumable and any number of workers can run
it at once: each claims a job with a lock file before running it):

* ``sources``: are source models trained to convergence? Each pilot source is fine-tuned at the
  candidate budget (2,000 rows x 2 epochs) and at a longer one (4,000 rows x 3 epochs) and scored on
  the same held-out rows, against the majority / constant baseline.
* ``recipes``: is target fine-tuning stable? Few-shot targets (256 rows) are fine-tuned from the base
  encoder and from two source models with four recipes, 3 seeds each; the spread between seeds and
  collapsed runs are what to look at.
* ``family`` (needs catalog v2): do related sources help more than unrelated ones, and is the source
  ordering reliable across seeds? 2 related targets x 10 sources x 3 seeds with the chosen recipe.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/pilot_v2.py run sources recipes &   # one worker per core
    OMP_NUM_THREADS=1 python benchmarks/pilot_v2.py run sources recipes &
    python benchmarks/pilot_v2.py summary                                  # tables for benchmarks/README.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskscout.data import catalog
from taskscout.evaluate.transfer import TransferProtocol, run_one, target_samples
from taskscout.io import file_lock, sha256_bytes
from taskscout.pool.config import BuildConfig
from taskscout.pool.context import source_samples
from taskscout.train.config import TrainConfig
from taskscout.train.finetune import load_or_finetune

OUT = Path(__file__).parent / "pilot_v2"
RESULTS = OUT / "results.jsonl"

# Source budgets. Both use the same fit set (4,000 rows), so their held-out rows are the same.
SOURCE_TRAIN = TrainConfig(epochs=2.0, batch_size=32, learning_rate=5e-5, warmup_ratio=0.1)
BUDGETS = {
    "2000x2": BuildConfig(max_train_rows=2000, max_fit_texts=4000, max_eval_rows=1000, train=SOURCE_TRAIN),
    "4000x3": BuildConfig(
        max_train_rows=4000,
        max_fit_texts=4000,
        max_eval_rows=1000,
        train=dataclasses.replace(SOURCE_TRAIN, epochs=3.0),
    ),
}
BUDGET_SOURCES = ["rt_sentiment", "healthtweets_source", "sotu_party"]

# Target recipes (256 training rows, batch 16, 64 tokens as small-v1).
_TARGET = TrainConfig(epochs=3.0, batch_size=16, learning_rate=1e-4, max_length=64)
RECIPES = {
    "small-v1": _TARGET,
    "warmup-5e-5": dataclasses.replace(_TARGET, learning_rate=5e-5, warmup_ratio=0.1),
    "lpft-5e-5": dataclasses.replace(_TARGET, learning_rate=5e-5, warmup_ratio=0.1, head_init="probe"),
}
RECIPE_TARGETS = ["debates2016_party", "drugreview_sentiment"]
RECIPE_STARTS = ["", "rt_sentiment"]  # "" = the base encoder; rt_sentiment is related to both
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Job:
    key: str
    run: Callable[[], dict[str, Any]]


def protocol_for(recipe: str, budget: str = "2000x2") -> TransferProtocol:
    return TransferProtocol(
        name=f"pilot-{recipe}", target_eval_rows=1000, train=RECIPES[recipe], source=BUDGETS[budget]
    )


def source_model(name: str, budget: str) -> Any:
    config = BUDGETS[budget]
    train, _, _ = source_samples(catalog.load(name), config)
    return load_or_finetune(train, config.model, config.train, progress=f"{name} {budget}")


def source_job(name: str, budget: str) -> dict[str, Any]:
    config = BUDGETS[budget]
    task = catalog.load(name)
    train, _, held = source_samples(task, config)
    started = time.perf_counter()
    model = source_model(name, budget)
    metrics = model.evaluate(held)
    if held.is_classification:
        constant = float(np.mean(held.labels == np.bincount(train.labels).argmax()))
    else:
        constant = 0.0  # a constant prediction has no correlation with the labels
    return {
        "train_rows": len(train),
        "held_rows": len(held),
        "metrics": metrics,
        "constant": constant,
        "train_seconds": model.info.get("train_seconds"),
        "final_loss": model.info.get("final_loss"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def recipe_job(target: str, start: str, recipe: str, seed: int) -> dict[str, Any]:
    protocol = protocol_for(recipe)
    train, evaluation = target_samples(catalog.load(target), protocol)
    model = source_model(start, "2000x2") if start else None
    started = time.perf_counter()
    metrics = run_one(model, protocol.source.model, train, evaluation, protocol, seed)
    return {
        "metrics": metrics,
        "train_rows": len(train),
        "eval_rows": len(evaluation),
        "seconds": round(time.perf_counter() - started, 1),
    }


def jobs(parts: list[str]) -> list[Job]:
    out: list[Job] = []
    if "sources" in parts:  # the two that the recipe runs start from
        out += [
            Job(f"sources|{name}|2000x2", lambda n=name: source_job(n, "2000x2"))
            for name in RECIPE_STARTS[1:]
        ]
    if "recipes" in parts:
        # Base-encoder runs first: they need no source model, so a second worker starts at once.
        for start in RECIPE_STARTS:
            for seed in SEEDS:
                for target in RECIPE_TARGETS:
                    for recipe in RECIPES:
                        out.append(
                            Job(
                                f"recipes|{target}|{start}|{recipe}|{seed}",
                                lambda t=target, s=start, r=recipe, sd=seed: recipe_job(t, s, r, sd),
                            )
                        )
    if "sources" in parts:
        out += [
            Job(f"sources|{name}|2000x2", lambda n=name: source_job(n, "2000x2"))
            for name in BUDGET_SOURCES
            if name not in RECIPE_STARTS
        ]
        out += [
            Job(f"sources|{name}|4000x3", lambda n=name: source_job(n, "4000x3"))
            for name in BUDGET_SOURCES[:2]
        ]
    return out


def done_keys() -> set[str]:
    if not RESULTS.exists():
        return set()
    return {json.loads(line)["key"] for line in RESULTS.read_text().splitlines() if line.strip()}


def run(parts: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    claims = OUT / ".claims"
    for job in jobs(parts):
        if job.key in done_keys():
            continue
        with file_lock(claims / f"{sha256_bytes(job.key.encode())[:16]}.lock", wait=False) as mine:
            if not mine or job.key in done_keys():
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {job.key}", flush=True)
            result = {"key": job.key, **job.run(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            with file_lock(RESULTS.with_suffix(".lock")), RESULTS.open("a") as handle:
                handle.write(json.dumps(result, sort_keys=True) + "\n")
            print(f"  -> {result['metrics']['main']:.4f} ({result['seconds']} s)", flush=True)


def summary() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    print("## Source budgets (held-out main metric vs constant baseline)\n")
    print("| source | budget | train rows | held-out rows | score | constant | final loss | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted((r for r in rows if r["key"].startswith("sources|")), key=lambda r: r["key"]):
        _, name, budget = r["key"].split("|")
        print(
            f"| {name} | {budget} | {r['train_rows']} | {r['held_rows']} | {r['metrics']['main']:.3f} "
            f"| {r['constant']:.3f} | {r['final_loss']:.3f} | {r['train_seconds']} |"
        )
    print("\n## Target recipes (main metric x 100 per seed; mean, sd over seeds)\n")
    table: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in rows:
        if r["key"].startswith("recipes|"):
            _, target, start, recipe, seed = r["key"].split("|")
            table.setdefault((target, start, recipe), {})[int(seed)] = 100 * r["metrics"]["main"]
    print("| target | start | recipe | seeds | mean | sd |")
    print("|---|---|---|---|---|---|")
    for (target, start, recipe), by_seed in sorted(table.items()):
        values = [by_seed[s] for s in sorted(by_seed)]
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        print(
            f"| {target} | {start or '(base)'} | {recipe} | {' / '.join(f'{v:.1f}' for v in values)} "
            f"| {np.mean(values):.1f} | {sd:.1f} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run (or continue) the named parts")
    run_parser.add_argument("parts", nargs="+", choices=["sources", "recipes", "family"])
    sub.add_parser("summary", help="print the result tables")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.parts)
    else:
        summary()


if __name__ == "__main__":
    sys.exit(main())
