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


FamilyOption = Annotated[
    str | None, typer.Option("--family", help="Only tasks of this family (e.g. sentiment, topic).")
]


@app.command("list")
def list_tasks(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    family: FamilyOption = None,
) -> None:
    """List catalog tasks (family, near-duplicate text group, type, language) and whether each is fetched."""
    from taskscout.data import catalog

    rows = []
    for entry in catalog.list_tasks(family=family):
        man = catalog.manifest(entry.name) if catalog.is_fetched(entry.name) else None
        counts = None
        if man is not None:
            counts = man.get("label_distribution") if entry.task_type == "classification" else None
        rows.append(
            {
                "name": entry.name,
                "family": entry.family,
                "text_group": entry.group,
                "task_type": entry.task_type,
                "language": entry.language,
                "pair": entry.pair,
                "description": entry.description,
                "licence": entry.licence,
                "source": f"{entry.source.registry}:{entry.source.package}=={entry.source.version}",
                "fetched": man is not None,
                "rows": man.get("rows") if man else None,
                "num_classes": man.get("num_classes") if man else None,
                "label_counts": counts,
                "label_stats": man.get("label_stats") if man else None,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    title = f"taskscout catalog ({len(rows)} tasks{f', family {family}' if family else ''})"
    table = Table(title=title)
    table.add_column("name", no_wrap=True)
    for column in ("family", "group", "type", "lang", "rows", "source", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["family"],
            row["text_group"] if row["text_group"] != row["name"] else "",
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
    family: FamilyOption = None,
    force: Annotated[bool, typer.Option(help="Rebuild tasks that are already fetched.")] = False,
) -> None:
    """Download, verify and normalise catalog tasks into $TASKSCOUT_HOME (idempotent)."""
    from taskscout.data import catalog

    names = list(names or [])
    if all_tasks:
        names = [e.name for e in catalog.list_tasks()]
    elif family is not None:
        names += [e.name for e in catalog.list_tasks(family=family)]
    if not names:
        raise typer.BadParameter(
            "name at least one task, or pass --family F or --all (see `taskscout data list`)"
        )
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
