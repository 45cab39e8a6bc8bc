"""``taskscout transfer | evaluate | bench``: ground truth and how well rankings agree with it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from taskscout.evaluate.suites import REFERENCE_PROTOCOL

console = Console()

# Kept here, not in taskscout.devices, because that module imports torch and the CLI starts without it.
DEVICE_HELP = "Device: auto (first CUDA GPU, else CPU), cpu, cuda, cuda:N or mps."
DeviceOpt = Annotated[str, typer.Option(help=DEVICE_HELP)]
RayCpusOpt = Annotated[float, typer.Option(help="CPUs each Ray task reserves.")]
RayGpusOpt = Annotated[float, typer.Option(help="GPUs each Ray task reserves.")]

ProtocolOpt = Annotated[str, typer.Option(help="Transfer protocol name.")]
GroundTruthOpt = Annotated[
    Path | None, typer.Option(help="Ground-truth JSON (default: the one shipped for the protocol).")
]
PoolOpt = Annotated[Path | None, typer.Option(help="Pool directory (default: the built-in pool).")]


def transfer(
    sources: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Source task (repeatable).")
    ] = None,
    targets: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help="Target (repeatable): a catalog task, or your own data: a CSV/TSV/JSON(L)/Parquet file, "
            "hf:ID or catalog:NAME.",
        ),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="Text column of a target file (default: inferred).")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="Label column of a target file (default: inferred).")
    ] = None,
    benchmark: Annotated[
        bool, typer.Option(help="Use the benchmark suite's sources and targets for --protocol.")
    ] = False,
    protocol: ProtocolOpt = REFERENCE_PROTOCOL,
    db: Annotated[Path | None, typer.Option(help="SQLite results file (default: $TASKSCOUT_HOME).")] = None,
    export: Annotated[
        Path | None, typer.Option(help="Write the aggregated ground-truth JSON here after.")
    ] = None,
    limit_minutes: Annotated[
        float | None, typer.Option(help="Stop starting new runs after this long.")
    ] = None,
    restore: Annotated[
        Path | None, typer.Option(help="First add the runs of a runs CSV (written beside --export).")
    ] = None,
    export_only: Annotated[
        bool, typer.Option(help="Only write --export from finished runs; run nothing.")
    ] = False,
    device: DeviceOpt = "auto",
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            flag_value="local",
            help="Run each source fine-tune and transfer run as a Ray task: --ray alone starts a local "
            "Ray runtime; --ray auto joins this node's cluster; --ray ray://HOST:10001 connects to one.",
        ),
    ] = None,
    order: Annotated[
        str,
        typer.Option(
            help="source: all seeds of a source together (each source model trained once; the default); "
            "seed: one seed of every pair first (a complete one-seed matrix early)."
        ),
    ] = "source",
    ray_cpus: RayCpusOpt = 1.0,
    ray_gpus: RayGpusOpt = 0.0,
    source_models: Annotated[
        bool,
        typer.Option(
            "--source-models",
            help="Only evaluate the source models that have no held-out score yet (training them if "
            "needed); no transfer runs.",
        ),
    ] = False,
) -> None:
    """Run real intermediate-task transfer experiments (resumable; finished runs are skipped).

    Locally, start it once per core (OMP_NUM_THREADS=1 each) on one results file: the workers share the
    runs. With --ray, one driver sends every run to a Ray cluster and writes the results.
    Your own data as a target: --target my_data.csv --source rt_sentiment --source ... computes its
    ground truth with the same protocol.
    """
    from taskscout.cluster import RayOptions
    from taskscout.devices import resolve_device
    from taskscout.evaluate.benchmark import duplicate_checker
    from taskscout.evaluate.suites import get_suite
    from taskscout.evaluate.transfer import (
        BASELINE,
        ResultStore,
        evaluate_missing_source_models,
        get_protocol,
        run_transfer,
        run_transfer_ray,
        task_loader,
    )

    chosen = get_protocol(protocol)
    if benchmark:
        suite = get_suite(protocol)
        sources = list(sources or []) or list(suite.sources)
        targets = list(targets or []) or list(suite.targets)
    if not sources or not (targets or source_models):
        raise typer.BadParameter("give --source and --target tasks, or --benchmark")
    sources = [s.removeprefix("catalog:") for s in sources]
    targets = [t.removeprefix("catalog:") for t in targets]
    resolve_device(device)  # a device this machine lacks fails now, not after the first source
    store = ResultStore(db)
    load = task_loader(text_column=text_column, label_column=label_column)
    deadline = None if limit_minutes is None else time.monotonic() + 60 * limit_minutes
    started = time.monotonic()

    class _Deadline(Exception):
        pass

    def report(run, metrics, seconds, progress) -> None:
        # Other workers are assumed to go as fast as this one.
        eta = (time.monotonic() - started) / progress.done * progress.left / progress.workers
        name = run.source if run.source != BASELINE else "(no transfer)"
        workers = f", {progress.workers} workers" if progress.workers > 1 else ""
        console.print(
            f"[{progress.done} done, {progress.left} left{workers}] {name} -> {run.target} seed "
            f"{run.seed}: {metrics['main']:.4f} ({seconds:.0f} s; ETA {eta / 60:.0f} min)",
            highlight=False,
        )
        if deadline is not None and time.monotonic() > deadline:
            raise _Deadline

    if restore is not None:
        console.print(f"restored {store.restore(restore, chosen)} runs from {restore}")
    if export_only:
        if not export:
            raise typer.BadParameter("--export-only needs --export PATH")
        write_ground_truth(store, chosen, export, sources, targets)
        return
    if source_models:
        added = evaluate_missing_source_models(
            sources,
            chosen,
            store,
            load,
            device=device,
            on_source=lambda name, main, constant: console.print(
                f"{name}: {main:.4f} on its held-out rows (constant predictor {constant:.4f})",
                highlight=False,
            ),
        )
        console.print(f"{added} source models evaluated; results in {store.path}")
        if export and targets:
            write_ground_truth(store, chosen, export, sources, targets)
        return
    try:
        if ray is None:
            done = run_transfer(
                sources,
                targets,
                chosen,
                store,
                load,
                is_duplicate=duplicate_checker(load),
                on_run=report,
                device=device,
                run_order=order,
            )
        else:
            options = RayOptions(address=ray, cpus_per_task=ray_cpus, gpus_per_task=ray_gpus)
            done = run_transfer_ray(
                sources,
                targets,
                chosen,
                store,
                load,
                options,
                is_duplicate=duplicate_checker(load),
                on_run=report,
                device=device,
            )
        console.print(f"{done} runs done; results in {store.path}")
    except _Deadline:
        console.print(f"time limit reached; finished runs are in {store.path}, rerun to continue")
    if export:
        write_ground_truth(store, chosen, export, sources, targets)


def write_ground_truth(store, protocol, path: Path, sources: list[str], targets: list[str]) -> None:
    import json

    from taskscout.evaluate.groundtruth import GroundTruth
    from taskscout.evaluate.signal import signal_by_target
    from taskscout.evaluate.transfer import aggregate_runs

    frame = store.frame(protocol)
    frame = frame[frame["target"].isin(targets) & (frame["source"].isin(sources) | (frame["source"] == ""))]
    records = aggregate_runs(frame)
    source_models = store.source_models(protocol)
    versions = json.loads(frame["versions"].iloc[0]) if len(frame) else {}
    GroundTruth(
        protocol={"name": protocol.name, "hash": protocol.hash(), **protocol.to_dict()},
        records=records,
        meta={
            "regenerate": f"taskscout transfer --benchmark --protocol {protocol.name} "
            f"--restore {path.with_suffix('.runs.csv')} --export {path}",
            "versions": versions,
            "runs": len(frame),
            "compute_seconds": round(float(frame["seconds"].sum()), 1),
            # Per target: reliability and sources beating no transfer in a paired test over seeds.
            # NaN is not JSON: a target without measured sources has no best gain.
            "significance": [
                {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
                for row in signal_by_target(frame).to_dict(orient="records")
            ],
            # Each source model's held-out score against the constant predictor on the same rows.
            "source_models": [
                {"source": row.source, "main": row.main, "constant": row.constant, "rows": int(row.rows)}
                for row in source_models[source_models["source"].isin(sources)].itertuples()
            ],
        },
    ).save(path)
    runs_path = path.with_suffix(".runs.csv")
    store.save_runs(runs_path, protocol)
    console.print(f"wrote {path} ({len(records)} source-target pairs from {len(frame)} runs) and {runs_path}")


def evaluate(
    method: Annotated[str, typer.Option("--method", "-m", help="Selection method.")] = "esm-logme",
    pool: PoolOpt = None,
    ground_truth: GroundTruthOpt = None,
    protocol: ProtocolOpt = REFERENCE_PROTOCOL,
) -> None:
    """Score one method's rankings against the ground truth, per target and averaged."""
    from taskscout.evaluate.benchmark import catalog_loader, evaluate_method
    from taskscout.evaluate.groundtruth import GroundTruth, default_ground_truth_path
    from taskscout.evaluate.report import TABLE_METRICS, compute_signal, format_p
    from taskscout.evaluate.transfer import get_protocol
    from taskscout.pool.store import open_pool

    gt = GroundTruth.load(ground_truth or default_ground_truth_path(protocol))
    result = evaluate_method(
        method, gt, open_pool(pool), get_protocol(protocol), catalog_loader(), progress=True
    )
    table = Table(title=f"{method} against {protocol} ground truth")
    columns = [
        "target",
        "ndcg",
        "ndcg_vu",
        "regret@1",
        "regret@3",
        "regret@5",
        "rho",
        "spearman",
        "top1_gain",
    ]
    for column in columns:
        table.add_column(column, justify="left" if column == "target" else "right")
    for _, row in result.per_target.iterrows():
        table.add_row(*[str(row[c]) if c == "target" else f"{row[c]:.3f}" for c in columns])
    table.add_section()
    table.add_row("mean", *[f"{result.summary[c]['mean']:.3f}" for c in columns[1:]])
    signal = compute_signal([result], gt)
    table.add_row("random ranking", *[f"{signal.random.get(c, float('nan')):.3f}" for c in columns[1:]])
    ceiling = signal.ceiling_summary()
    if ceiling:
        table.add_row(
            "noise ceiling", *[f"{ceiling.get(c, {}).get('mean', float('nan')):.3f}" for c in columns[1:]]
        )
    table.add_row(
        "p vs random",
        *[
            format_p(signal.p_values[method].get(c, float("nan"))) if c in TABLE_METRICS else ""
            for c in columns[1:]
        ],
    )
    console.print(table)
    console.print(
        f"P2: {result.p2_ms_per_source:.1f} ms per source; {result.storage_bytes_per_source / 1024:.0f} KB "
        "per source in the pool. p: one-sided permutation test of the mean over targets against random "
        f"rankings of the same sources; ground-truth reliability {signal.mean_reliability:.2f} (split-half)."
    )


def bench(
    methods: Annotated[
        list[str] | None, typer.Option("--method", "-m", help="Methods (default: all).")
    ] = None,
    pool: PoolOpt = None,
    ground_truth: GroundTruthOpt = None,
    protocol: ProtocolOpt = REFERENCE_PROTOCOL,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("reports"),
    scores: Annotated[
        Path | None,
        typer.Option(help="Stored rankings to reuse and extend (default: OUT/scores.json)."),
    ] = None,
    recompute: Annotated[
        bool,
        typer.Option(
            help="Recompute the chosen methods' rankings instead of reusing stored ones (others are kept)."
        ),
    ] = False,
    stored: Annotated[
        bool,
        typer.Option(help="Only re-score the stored rankings against the ground truth; no pool needed."),
    ] = False,
    readme: Annotated[
        Path | None,
        typer.Option(help="Also write the headline and results table into this README's generated block."),
    ] = None,
) -> None:
    """Run every method on every benchmark target; write report.md and report.html with plots.

    Rankings are stored (OUT/scores.json) and reused while the pool entries and the protocol are
    unchanged, so re-running after the ground truth grows, or adding a fusion, costs seconds.
    """
    from taskscout.errors import PoolError, TaskscoutError
    from taskscout.evaluate.benchmark import ScoreCache, catalog_loader, evaluate_method
    from taskscout.evaluate.groundtruth import GroundTruth, default_ground_truth_path
    from taskscout.evaluate.report import (
        compute_signal,
        markdown_table,
        readme_block,
        update_readme,
        write_report,
    )
    from taskscout.evaluate.transfer import get_protocol
    from taskscout.methods import registry
    from taskscout.pool.store import open_pool

    if readme is not None:
        readme_block(readme)  # before minutes of work: it must have the block to write into
    gt = GroundTruth.load(ground_truth or default_ground_truth_path(protocol))
    scores_path = scores or out / "scores.json"
    if stored and recompute:
        raise typer.BadParameter("--stored re-scores stored rankings; it cannot be combined with --recompute")
    if stored and not scores_path.exists():
        raise TaskscoutError(
            f"no stored rankings at {scores_path}; run `taskscout bench` without --stored first"
        )
    opened = None if stored else open_pool(pool)
    load = catalog_loader()
    chosen = list(methods or []) or (ScoreCache(scores_path).methods() if stored else sorted(registry()))
    cache = ScoreCache(scores_path, refresh=chosen if recompute else ())
    results = []
    for name in chosen:
        console.print(f"evaluating {name} ...")
        try:
            results.append(evaluate_method(name, gt, opened, get_protocol(protocol), load, cache=cache))
        except PoolError as exc:  # a method whose P1 entries were not built into this pool
            console.print(f"[yellow]skipped {name}: {exc}[/yellow]")
    if not results:
        where = f"pool {opened.path}" if opened else f"the rankings stored in {scores_path}"
        raise PoolError(f"no method could be evaluated on {where}; build entries with `taskscout pool build`")
    signal = compute_signal(results, gt)
    md, page = write_report(results, gt, out, signal=signal)
    console.print(markdown_table(results, signal))
    console.print(f"wrote {md} and {page}")
    if readme is not None:
        update_readme(readme, results, gt, signal)
        console.print(f"updated the results in {readme}")
