"""The ``taskscout`` command line: one verb per job.

Every error a user can cause is a :class:`~taskscout.errors.TaskscoutError` and is printed as one line
(``error: ...``) with a non-zero exit code; an interrupt says what was kept.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from taskscout.cli.evaluate import DeviceOpt
from taskscout.errors import TaskscoutError

app = typer.Typer(
    help="Rank source datasets for intermediate-task transfer (ESM-LogME and friends).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

# Sub-command groups register themselves on import.
from taskscout.cli import data as _data  # noqa: E402
from taskscout.cli import evaluate as _evaluate  # noqa: E402
from taskscout.cli import pool as _pool  # noqa: E402

app.add_typer(_data.app, name="data")
app.add_typer(_pool.app, name="pool")
app.command()(_evaluate.transfer)
app.command()(_evaluate.evaluate)
app.command()(_evaluate.bench)

DEFAULT_TARGET = "catalog:debates2016_party"


TextColumn = Annotated[str | None, typer.Option(help="Column holding the input text (inferred if omitted).")]
PairColumn = Annotated[str | None, typer.Option(help="Column holding the second text of pair tasks.")]
LabelColumn = Annotated[str | None, typer.Option(help="Label column (inferred if omitted).")]
TaskTypeOpt = Annotated[str | None, typer.Option(help="classification or regression (inferred if omitted).")]
SplitOpt = Annotated[str | None, typer.Option(help="Split of a Hugging Face dataset.")]
MaxBytesOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Refuse data files larger than this many bytes (default 512 MiB)."),
]
MaxReadRowsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Read at most this many rows of a data file (default 1,000,000)."),
]


def _load_options(
    text_column, text_pair_column, label_column, task_type, split=None, max_bytes=None, max_read_rows=None
) -> dict:
    options = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "label_column": label_column,
        "task_type": task_type,
        "split": split,
        "max_bytes": max_bytes,
        "max_read_rows": max_read_rows,
    }
    return {k: v for k, v in options.items() if v is not None}


@app.command()
def rank(
    target: Annotated[
        str,
        typer.Argument(help="Target task: a CSV/TSV/JSON(L)/Parquet file, catalog:NAME, or hf:ID[:CONFIG]."),
    ] = DEFAULT_TARGET,
    pool: Annotated[Path | None, typer.Option(help="Pool directory (default: the built-in pool).")] = None,
    method: Annotated[
        str, typer.Option("--method", "-m", help="Selection method (see `taskscout methods`).")
    ] = "esm-logme",
    model: Annotated[str | None, typer.Option(help="Base encoder (default: the pool's).")] = None,
    top: Annotated[int | None, typer.Option(min=1, help="Show only the best K sources (K >= 1).")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the ranking as JSON here.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write the ranking as CSV here.")] = None,
    keep_duplicates: Annotated[
        bool, typer.Option(help="Keep sources that are near-duplicates of the target.")
    ] = False,
    max_target_rows: Annotated[int, typer.Option(help="Stratified cap on target rows.")] = 1000,
    text_column: TextColumn = None,
    text_pair_column: PairColumn = None,
    label_column: LabelColumn = None,
    task_type: TaskTypeOpt = None,
    split: SplitOpt = None,
    max_bytes: MaxBytesOpt = None,
    max_read_rows: MaxReadRowsOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Rank the pool's source tasks for TARGET: which dataset to fine-tune on first."""
    from taskscout.evaluate.quality import load_benchmark_quality
    from taskscout.io import write_bytes, write_json
    from taskscout.ranking import rank as run_rank

    # Fail before the work, not after it, when an output cannot be written.
    for option, out in (("--json", json_out), ("--csv", csv_out)):
        if out is not None:
            check_output_path(out, option)
    result = run_rank(
        target,
        pool=pool,
        method=method,
        model=model,
        top=top,
        load=_load_options(
            text_column, text_pair_column, label_column, task_type, split, max_bytes, max_read_rows
        ),
        keep_duplicates=keep_duplicates,
        max_target_rows=max_target_rows,
        progress=True,
        device=device,
    )
    table = Table(
        title=escape(f"Sources for {result.target} ({result.method}, {result.target_rows} target rows)")
    )
    for column, justify in (
        ("rank", "right"),
        ("source", "left"),
        ("score", "right"),
        ("language", "left"),
        ("type", "left"),
        ("#examples", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=column in ("source", "score"))
    for row in result.sources:
        table.add_row(
            str(row.rank),
            escape(row.source),
            f"{row.score:.4f}",
            escape(row.language),
            escape(row.task_type),
            f"{row.num_examples:,}",
        )
    console.print(table)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning: {escape(warning)}[/yellow]")
    for name, why in sorted(result.excluded.items()):
        console.print(f"[dim]excluded {escape(name)}: {escape(why)} (--keep-duplicates keeps it)[/dim]")
    for name, why in sorted(result.failed.items()):
        err_console.print(f"[yellow]skipped {escape(name)}: {escape(why)}[/yellow]")
    t = result.timings
    console.print(
        f"[dim]embedding {t.get('embed_target', 0):.1f} s, scoring {t.get('score', 0) * 1000:.0f} ms "
        f"({t.get('score_per_source', 0) * 1000:.1f} ms per source), total {t.get('total', 0):.1f} s[/dim]"
    )
    quality = load_benchmark_quality()
    if quality is not None:
        # A ranking figure means nothing without chance and noise beside it: say how well this method
        # ranked where the truth is known, every time.
        console.print(f"[bold]How good is this ranking?[/bold] {escape(quality.describe(result.method))}")
    for option, out, write in (
        ("--json", json_out, lambda path: write_json(path, result.to_dict())),
        ("--csv", csv_out, lambda path: write_bytes(path, result.to_pandas().to_csv(index=False).encode())),
    ):
        if out is None:
            continue
        try:
            write(out)
        except OSError as exc:  # checked up front, but the disk can still fill up
            raise TaskscoutError(f"cannot write {option} {out}: {exc.strerror or exc}") from None


@app.command()
def inspect(
    source: Annotated[str, typer.Argument(help="A data file, catalog:NAME, or hf:ID[:CONFIG].")],
    text_column: TextColumn = None,
    text_pair_column: PairColumn = None,
    label_column: LabelColumn = None,
    task_type: TaskTypeOpt = None,
    split: SplitOpt = None,
    max_bytes: MaxBytesOpt = None,
    max_read_rows: MaxReadRowsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show how a dataset is read: inferred columns, task type, statistics and warnings."""
    from taskscout.data.loaders import load_task_with_report

    task, report = load_task_with_report(
        source,
        **_load_options(
            text_column, text_pair_column, label_column, task_type, split, max_bytes, max_read_rows
        ),
        fetch=True,
        progress=True,
    )
    summary = task.summary()
    warnings = list(report.warnings) + task.warnings()
    if as_json:
        print(
            json.dumps(
                {"summary": summary, "report": report.to_dict(), "warnings": warnings}, indent=2, default=str
            )
        )
        return
    table = Table(title=escape(str(source)), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    choice = report.choice
    table.add_row("text column", escape(str(choice.text_column)))
    table.add_row("pair column", escape(str(choice.text_pair_column or "-")))
    table.add_row("label column", escape(str(choice.label_column)))
    table.add_row("why", escape("\n".join(choice.reasons)) or "-")
    table.add_row("rows read / kept", f"{report.rows_read:,} / {report.rows_kept:,}")
    dropped = f"{report.dropped_missing_text:,} missing text, {report.dropped_missing_label:,} missing label"
    table.add_row("rows dropped", dropped)
    if report.truncated_texts:
        table.add_row("texts truncated", f"{report.truncated_texts:,}")
    for key in ("rows", "task_type", "pair", "language"):
        table.add_row(key, escape(str(summary[key])))
    if task.is_classification:
        counts = ", ".join(f"{k}: {v:,}" for k, v in summary["label_counts"].items())
        table.add_row("labels", escape(counts))
    else:
        table.add_row("label stats", escape(json.dumps(summary["label_stats"])))
    table.add_row(
        "words (q5/median/q95)",
        f"{summary['words']['q5']:.0f} / {summary['words']['q50']:.0f} / {summary['words']['q95']:.0f}",
    )
    console.print(table)
    for warning in warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/yellow]")


@app.command()
def methods() -> None:
    """List the source-selection methods (built-in and plug-ins) with their P1 and P2 costs."""
    import warnings

    from taskscout.evaluate.quality import load_benchmark_quality
    from taskscout.methods import plugin_problems, registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the problems are printed below, once
        found = registry()
    quality = load_benchmark_quality()
    table = Table(title="Selection methods")
    for column in ("name", "pool entry", "what it does", "P1 (per source, once)", "P2 (per target)"):
        table.add_column(column)
    if quality is not None:
        table.add_column(quality.metric, justify="right")

    def measured(name: str) -> list[str]:
        if quality is None:
            return []
        q = quality.methods.get(name)
        return [f"{q.mean:.1f}{' *' if q.significant else ''}" if q else "–"]

    for name, cls in sorted(found.items()):
        table.add_row(name, cls.kind or "-", cls.description, cls.p1_cost, cls.p2_cost, *measured(name))
    table.add_row(
        "fusion:A+B",
        "members'",
        "reciprocal rank fusion of methods A, B, ...",
        "the members'",
        "sum of the members'",
        *measured(""),
    )
    console.print(table)
    if quality is not None:
        console.print(
            f"{quality.metric}: mean over the {quality.n_targets} targets of benchmark `{quality.protocol}` "
            f"({quality.n_sources} sources); a random ranking scores {quality.random:.1f}, the noise "
            f"ceiling is {quality.noise_ceiling:.1f}; * = better than random after correcting for "
            f"{len(quality.methods)} comparisons (README 'Results')."
        )
    for problem in plugin_problems():
        err_console.print(f"[yellow]warning: {escape(problem)}[/yellow]")


def check_output_path(path: Path, option: str) -> None:
    """Raise a one-line error now if ``path`` cannot be written later (a directory, no write access)."""
    if path.is_dir():
        raise TaskscoutError(f"{option} {path} is a directory; pass a file name")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise TaskscoutError(f"{option} {path} is not writable; pass another path")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise TaskscoutError(f"{option} {path}: cannot create files in {parent}; pass another path")


def _optional_ray_address(args: list[str]) -> list[str]:
    """``--ray`` alone means ``--ray local``: Typer options cannot take an optional value, so a bare
    ``--ray`` (last, or followed by another option) gets its default address here."""
    out: list[str] = []
    for index, arg in enumerate(args):
        out.append(arg)
        if arg == "--ray" and (index + 1 == len(args) or args[index + 1].startswith("-")):
            out.append("local")
    return out


def main() -> None:
    """Console-script entry point: run the app, turning user-caused errors into one line.

    Click's standalone mode prints usage errors itself; everything taskscout raises for bad input is a
    TaskscoutError, printed here as one line.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.argv[1:] = _optional_ray_address(sys.argv[1:])
    try:
        app()
    except TaskscoutError as exc:
        line = " ".join(str(exc).split("\n"))  # one line, even when a user's name holds a newline
        err_console.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted; finished work is kept and the next run continues from it")
        sys.exit(130)


if __name__ == "__main__":
    main()
