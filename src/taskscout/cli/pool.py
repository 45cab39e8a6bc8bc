"""``taskscout pool ...``: build, inspect and share source pools."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from taskscout.cli.evaluate import DeviceOpt, RayCpusOpt, RayGpusOpt
from taskscout.pool.config import (
    DEFAULT_IMPORT_MAX_BYTES,
    DEFAULT_IMPORT_MAX_FILES,
    DEFAULT_IMPORT_MAX_RATIO,
)

app = typer.Typer(
    help="Build, list and share source pools (ESMs and other per-source representations).",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


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
WritablePoolOpt = Annotated[
    Path | None,
    typer.Option(
        help="Pool directory to change (default: $TASKSCOUT_HOME/pools/local; the built-in pool is "
        "read-only)."
    ),
]


def _open(pool: Path | None):
    from taskscout.pool.store import open_pool

    return open_pool(pool)


def _open_writable(pool: Path | None, *, create: bool = False):
    """The pool a writing command changes: ``pool`` or the user's local pool, never the built-in one."""
    from taskscout.pool.store import Pool, user_pool_path

    path = pool or user_pool_path()
    opened = Pool.open_or_create(path) if create else Pool(path)
    opened._require_writable()
    return opened


def _warn_problems(opened) -> None:
    for name, why in sorted(opened.problems.items()):
        err_console.print(f"[yellow]skipped {escape(name)}: {escape(why)}[/yellow]")


@app.command()
def build(
    tasks: Annotated[
        list[str] | None, typer.Argument(help="Source tasks: catalog names, catalog:NAME or files.")
    ] = None,
    all_catalog: Annotated[
        bool, typer.Option("--all-catalog", help="Use every catalog task as a source.")
    ] = False,
    pool: WritablePoolOpt = None,
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
    trained_only: Annotated[
        bool,
        typer.Option(
            help="Only sources whose fine-tuned model is already on this machine (train nothing), e.g. "
            "the ones a `taskscout transfer` job trained."
        ),
    ] = False,
    device: DeviceOpt = "auto",
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            flag_value="local",
            help="Build each source as a Ray task (this process writes the pool): --ray alone starts "
            "a local Ray runtime; --ray auto joins this node's cluster; --ray ray://HOST:10001 connects "
            "to one.",
        ),
    ] = None,
    ray_cpus: RayCpusOpt = 1.0,
    ray_gpus: RayGpusOpt = 0.0,
) -> None:
    """Fine-tune the base encoder on each source and add its ESM to the pool (resumable)."""
    from taskscout.cluster import RayOptions
    from taskscout.devices import resolve_device
    from taskscout.encode.models import DEFAULT_MODEL
    from taskscout.pool.build import BuildResult, build_pool
    from taskscout.pool.config import BuildConfig

    resolve_device(device)  # a device this machine lacks fails before anything is fetched or built
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
    target = _open_writable(pool, create=True)  # refuse the built-in pool before fetching anything
    missing = [n for n in catalog_names if not catalog.is_fetched(n)]
    if missing:
        catalog.fetch(missing, progress=True)
    config = BuildConfig(
        model=model or DEFAULT_MODEL,
        max_train_rows=max_train_rows,
        max_fit_texts=max_fit_texts,
        esm_fit=esm_fit,
        train=dataclasses.replace(_DEFAULTS.train, epochs=epochs),
    )
    console.print(escape(f"building {len(names)} sources into {target.path}"))

    def report(result: BuildResult) -> None:
        style = {"built": "green", "skipped": "dim", "failed": "red"}[result.status]
        console.print(
            f"[{style}]{result.status:>7}[/{style}] {escape(result.source)} {result.seconds:.0f} s "
            f"{escape(result.message)}"
        )

    results = build_pool(
        target,
        names,
        config,
        methods=methods or ["esm-logme"],
        force=force,
        on_result=report,
        device=device,
        trained_only=trained_only,
        ray=None if ray is None else RayOptions(address=ray, cpus_per_task=ray_cpus, gpus_per_task=ray_gpus),
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
    _warn_problems(opened)
    if as_json:
        # One entry per line: json's C encoder (not used with indent) keeps 10,000 entries under a second.
        rows = (json.dumps({"kind": e.kind, "source": e.source, **e.meta}, default=str) for e in entries)
        print("[\n" + ",\n".join(rows) + "\n]" if entries else "[]")
        return
    table = Table(title=escape(f"{opened.path} ({len(entries)} entries)"))
    for column in ("kind", "source", "type", "lang", "#examples", "base model", "ESM R²", "source acc/corr"):
        table.add_column(column, no_wrap=column in ("kind", "source"))
    for e in entries:
        r2 = e.meta.get("esm_r2_heldout")
        lm = (e.meta.get("lm_eval") or {}).get("main")
        r2 = r2 if isinstance(r2, (int, float)) else None
        lm = lm if isinstance(lm, (int, float)) else None
        table.add_row(
            e.kind,
            e.source,
            escape(str(e.meta.get("task_type", ""))),
            escape(str(e.meta.get("language", ""))),
            f"{int(e.meta.get('num_examples', 0)):,}",
            escape(e.base_model.split("/")[-1]),
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
    pool: WritablePoolOpt = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
) -> None:
    """Remove a source's entries from a pool you own."""
    count = _open_writable(pool).remove(source, kind)
    console.print(escape(f"removed {count} entr{'y' if count == 1 else 'ies'} for {source}"))


@app.command("export")
def export_pool(
    archive: Annotated[Path, typer.Argument(help="Output .tar.gz (or directory, with --format hfselect).")],
    pool: PoolOpt = None,
    sources: Annotated[list[str] | None, typer.Option(help="Only these sources.")] = None,
    kinds: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", help="Only entries of these kinds (esm, textemb, ...; tar format)."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="tar (a pool archive) or hfselect (one hfselect ESM directory per source)."
        ),
    ] = "tar",
) -> None:
    """Write a pool (or some sources / kinds) to a .tar.gz to share, or as hfselect ESMs (verified first)."""
    if fmt == "hfselect":
        from taskscout.pool.hfselect import export_hfselect

        if kinds and set(kinds) != {"esm"}:
            raise typer.BadParameter("hfselect ESM directories hold esm entries only", param_hint="--kind")

        written, warnings = export_hfselect(_open(pool), archive, sources)
        for note in warnings:
            err_console.print(f"[yellow]{escape(note)}[/yellow]")
        console.print(escape(f"wrote {len(written)} hfselect ESMs to {archive}"))
        return
    if fmt != "tar":
        raise typer.BadParameter(f"unknown format {fmt!r}; use tar or hfselect", param_hint="--format")
    out = _open(pool).export(archive, sources, kinds)
    console.print(escape(f"wrote {out}"))


@app.command("import")
def import_pool(
    archive: Annotated[Path, typer.Argument(help="A .tar.gz made by `pool export`.")],
    pool: WritablePoolOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace entries that exist.")] = False,
    max_bytes: Annotated[
        int, typer.Option(min=1, help="Refuse archives that unpack to more bytes than this.")
    ] = DEFAULT_IMPORT_MAX_BYTES,
    max_files: Annotated[
        int, typer.Option(min=1, help="Refuse archives holding more files than this.")
    ] = DEFAULT_IMPORT_MAX_FILES,
    max_ratio: Annotated[
        float,
        typer.Option(min=1.0, help="Refuse archives that unpack to more than this many times their size."),
    ] = DEFAULT_IMPORT_MAX_RATIO,
) -> None:
    """Add the entries of a pool archive: all or nothing, every file checked against its checksum."""
    opened = _open_writable(pool, create=True)
    added = opened.import_archive(
        archive, overwrite=overwrite, max_bytes=max_bytes, max_files=max_files, max_ratio=max_ratio
    )
    for name in added:
        console.print(f"imported {escape(name)}")
    console.print(escape(f"imported {len(added)} entr{'y' if len(added) == 1 else 'ies'} into {opened.path}"))


@app.command()
def verify(
    pool: PoolOpt = None,
    repair: Annotated[
        bool, typer.Option(help="Rebuild the index from the entries that verify (writable pools only).")
    ] = False,
) -> None:
    """Re-check every entry's checksums; with --repair, rebuild the index from the verified entries."""
    report = (_open_writable(pool) if repair else _open(pool)).verify(repair=repair)
    for name, why in sorted(report.broken.items()):
        err_console.print(f"[red]broken[/red] {escape(name)}: {escape(why)}")
    for name, why in sorted(report.unindexed.items()):
        err_console.print(f"[yellow]not indexed[/yellow] {escape(name)}: {escape(why)}")
    for name in report.reindexed:
        console.print(f"re-indexed {escape(name)} (its config.json changed since it was indexed)")
    state = "index rebuilt" if report.repaired else ("ok" if report.clean else "problems found")
    console.print(f"{len(report.ok)} entries verified; {state}")
    if report.broken or (report.unindexed and not report.repaired):
        raise typer.Exit(1)


from taskscout.cli import pool_hub  # noqa: E402  (commands defined there, registered here)

pool_hub.register(app)
