"""``taskscout pool add / search-hub / push / pull``: hfselect ESMs and the Hugging Face Hub as pools.

Registered on the ``pool`` command group by :func:`register`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

WritablePoolOpt = Annotated[
    Path | None,
    typer.Option(help="Pool directory to change (default: $TASKSCOUT_HOME/pools/local)."),
]


def _writable(pool: Path | None):
    from taskscout.pool.store import Pool, user_pool_path

    opened = Pool.open_or_create(pool or user_pool_path())
    opened._require_writable()
    return opened


def add(
    sources: Annotated[
        list[str], typer.Argument(help="hfselect ESM directories and/or hub:USER/REPO[@REVISION].")
    ],
    pool: WritablePoolOpt = None,
    name: Annotated[str | None, typer.Option(help="Source name (one ESM only; default: its name).")] = None,
    task_type: Annotated[
        str, typer.Option(help="classification or regression, if known (hfselect does not record it).")
    ] = "",
    overwrite: Annotated[bool, typer.Option(help="Replace entries with the same name.")] = False,
) -> None:
    """Add hfselect ESMs (directories or Hub repos) to a pool: all validated first, then all added."""
    from taskscout.pool.sources import add_hfselect

    opened = _writable(pool)
    entries = add_hfselect(opened, sources, name=name, task_type=task_type, overwrite=overwrite)
    for entry in entries:
        pinned = entry.meta.get("origin_revision")
        console.print(
            escape(f"added {entry.label} from {entry.meta.get('origin')}" + (f"@{pinned}" if pinned else ""))
        )
    err_console.print(
        "[yellow]hfselect ESMs store no text hashes: duplicate exclusion is off for these sources[/yellow]"
    )
    console.print(escape(f"added {len(entries)} entries to {opened.path}"))


def search_hub(
    base_model: Annotated[str, typer.Option(help="Base model id the ESMs were built for.")],
    search: Annotated[str | None, typer.Option(help="Only repos whose name contains this.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many repos.")] = 100,
) -> None:
    """List ESM repos on the Hugging Face Hub for a base model (hfselect's tags)."""
    from taskscout.pool.hub import search_hub as search_repos

    found = search_repos(base_model, search=search, limit=limit)
    table = Table(title=escape(f"ESMs for {base_model} on the Hub ({len(found)})"))
    for column in ("repo", "downloads", "last modified"):
        table.add_column(column)
    for repo in found:
        table.add_row(
            escape(f"hub:{repo.repo_id}"),
            "-" if repo.downloads is None else str(repo.downloads),
            escape(repo.last_modified or "-"),
        )
    console.print(table)


def push(
    repo: Annotated[str, typer.Argument(help="Hub repo USER/REPO[@BRANCH] to upload the pool to.")],
    pool: Annotated[Path | None, typer.Option(help="Pool directory (default: the local pool).")] = None,
    private: Annotated[bool, typer.Option(help="Create the repo private.")] = False,
) -> None:
    """Upload a whole pool (verified first) to a Hub repo; prints the commit to pull it by."""
    from taskscout.pool.hub import push_pool
    from taskscout.pool.store import open_pool, user_pool_path

    opened = open_pool(pool or user_pool_path())
    sha = push_pool(opened, repo, private=private)
    console.print(escape(f"pushed {opened.path} to hub:{repo.split('@')[0]}@{sha}"))


def pull(
    repo: Annotated[str, typer.Argument(help="Hub repo USER/REPO[@REVISION] holding a taskscout pool.")],
    pool: WritablePoolOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace entries that exist.")] = False,
) -> None:
    """Add the entries of a pool on the Hub at a pinned commit (every file checked against its checksum)."""
    from taskscout.pool.hub import pull_pool

    opened = _writable(pool)
    added, sha = pull_pool(opened, repo, overwrite=overwrite)
    for name in added:
        console.print(f"imported {escape(name)}")
    console.print(
        escape(f"imported {len(added)} entries from hub:{repo.split('@')[0]}@{sha} into {opened.path}")
    )


def register(app: typer.Typer) -> None:
    app.command("add")(add)
    app.command("search-hub")(search_hub)
    app.command("push")(push)
    app.command("pull")(pull)
