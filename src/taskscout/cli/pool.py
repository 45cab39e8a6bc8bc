"""``taskscout pool ...``: build, inspect and share source pools."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Build, list and share source pools (ESMs and other per-source representations).",
    no_args_is_help=True,
)
console = Console()


def _build_defaults():
    from taskscout.pool.config import BuildConfig

    return BuildConfig()


_DEFAULTS = _build_defaults()

PoolOpt = Annotated[
    Path | None,
    typer.Option(
        help="Pool directory (default: the built-in pool for reading, "
        "$TASKSCOUT_HOME/pools/local for building)."
    ),
]


def _open(pool: Path | None):
    from taskscout.pool.store import open_pool

    return open_pool(pool)


@app.command()
def build(
    tasks: Annotated[
        list[str] | None, typer.Argument(help="Source tasks: catalog names, catalog:NAME or files.")
    ] = None,
    all_catalog: Annotated[
        bool, typer.Option("--all-catalog", help="Use every catalog task as a source.")
    ] = False,
    pool: PoolOpt = None,
    model: Annotated[str | None, typer.Option(help="Base encoder (hub id or directory).")] = None,
    max_train_rows: Annotated[
        int, typer.Option(help="Rows each source is fine-tuned on.")
    ] = _DEFAULTS.max_train_rows,
    max_fit_texts: Annotated[
        int, typer.Option(help="Texts each ESM is fitted on.")
    ] = _DEFAULTS.max_fit_texts,
    epochs: Annotated[float, typer.Option(help="Fine-tuning epochs.")] = _DEFAULTS.train.epochs,
    esm_fit: Annotated[str, typer.Option(help="ridge (closed form) or sgd (the paper's trainer).")] = "ridge",
    methods: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help="Methods whose P1 entries to build (repeatable)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild entries that already exist.")] = False,
) -> None:
    """Fine-tune the base encoder on each source and add its ESM to the pool (resumable)."""
    from taskscout.encode.models import DEFAULT_MODEL
    from taskscout.pool.build import BuildResult, build_pool
    from taskscout.pool.config import BuildConfig
    from taskscout.pool.store import Pool, user_pool_path

    names = list(tasks or [])
    if all_catalog:
        from taskscout.data import catalog

        names += [e.name for e in catalog.list_tasks()]
    if not names:
        raise typer.BadParameter("name at least one source task, or pass --all-catalog")
    from taskscout.data import catalog

    catalog_names = [
        n.removeprefix("catalog:")
        for n in names
        if ":" not in n.removeprefix("catalog:") and not Path(n).exists()
    ]
    missing = [n for n in catalog_names if not catalog.is_fetched(n)]
    if missing:
        catalog.fetch(missing, progress=True)
    target = Pool.open_or_create(pool or user_pool_path())
    config = BuildConfig(
        model=model or DEFAULT_MODEL,
        max_train_rows=max_train_rows,
        max_fit_texts=max_fit_texts,
        esm_fit=esm_fit,
        train=dataclasses.replace(_DEFAULTS.train, epochs=epochs),
    )
    console.print(f"building {len(names)} sources into {target.path}")

    def report(result: BuildResult) -> None:
        style = {"built": "green", "skipped": "dim", "failed": "red"}[result.status]
        console.print(
            f"[{style}]{result.status:>7}[/{style}] {result.source} {result.seconds:.0f} s {result.message}"
        )

    results = build_pool(
        target, names, config, methods=methods or ["esm-logme"], force=force, on_result=report
    )
    failed = [r for r in results if r.status == "failed"]
    console.print(
        f"{sum(r.status == 'built' for r in results)} built, {sum(r.status == 'skipped' for r in results)} "
        f"skipped, {len(failed)} failed"
    )
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_entries(
    pool: PoolOpt = None,
    kind: Annotated[str | None, typer.Option(help="Only entries of this kind (esm, ...).")] = None,
    base_model: Annotated[str | None, typer.Option(help="Only entries for this base model.")] = None,
    language: Annotated[str | None, typer.Option(help="Only sources in this language.")] = None,
    task_type: Annotated[str | None, typer.Option(help="classification or regression.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a pool's entries."""
    opened = _open(pool)
    entries = opened.entries(kind, base_model=base_model, language=language, task_type=task_type)
    if as_json:
        print(
            json.dumps(
                [{"kind": e.kind, "source": e.source, **e.meta} for e in entries], indent=2, default=str
            )
        )
        return
    table = Table(title=f"{opened.path} ({len(entries)} entries)")
    for column in ("kind", "source", "type", "lang", "#examples", "base model", "ESM R²", "source acc/corr"):
        table.add_column(column, no_wrap=column in ("kind", "source"))
    for e in entries:
        r2 = e.meta.get("esm_r2_heldout")
        lm = e.meta.get("lm_eval", {}).get("main")
        table.add_row(
            e.kind,
            e.source,
            str(e.meta.get("task_type", "")),
            str(e.meta.get("language", "")),
            f"{int(e.meta.get('num_examples', 0)):,}",
            e.base_model.split("/")[-1],
            "-" if r2 is None else f"{r2:.3f}",
            "-" if lm is None else f"{lm:.3f}",
        )
    console.print(table)


@app.command()
def show(
    source: Annotated[str, typer.Argument(help="Source name.")],
    pool: PoolOpt = None,
    kind: Annotated[str, typer.Option(help="Entry kind.")] = "esm",
) -> None:
    """Show one entry's metadata."""
    entry = _open(pool).get(kind, source)
    print(
        json.dumps(
            {"kind": entry.kind, "source": entry.source, "path": str(entry.path), **entry.meta},
            indent=2,
            default=str,
        )
    )


@app.command()
def remove(
    source: Annotated[str, typer.Argument(help="Source name.")],
    pool: PoolOpt = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
) -> None:
    """Remove a source's entries from a pool."""
    count = _open(pool).remove(source, kind)
    console.print(f"removed {count} entr{'y' if count == 1 else 'ies'} for {source}")


@app.command("export")
def export_pool(
    archive: Annotated[Path, typer.Argument(help="Output .tar.gz.")],
    pool: PoolOpt = None,
    sources: Annotated[list[str] | None, typer.Option(help="Only these sources.")] = None,
) -> None:
    """Write a pool (or some sources) to a .tar.gz to share."""
    out = _open(pool).export(archive, sources)
    console.print(f"wrote {out}")


@app.command("import")
def import_pool(
    archive: Annotated[Path, typer.Argument(help="A .tar.gz made by `pool export`.")],
    pool: PoolOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace entries that exist.")] = False,
) -> None:
    """Add the entries of an exported pool archive (checksums verified)."""
    from taskscout.pool.store import Pool, user_pool_path

    added = Pool.open_or_create(pool or user_pool_path()).import_archive(archive, overwrite=overwrite)
    console.print(f"imported {len(added)} entries")
