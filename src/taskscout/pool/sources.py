"""``taskscout pool add``: hfselect ESMs from directories and Hub repos, validated, then added together."""

from __future__ import annotations

from taskscout.errors import PoolError
from taskscout.pool.entry import PoolEntry
from taskscout.pool.hfselect import add_esms, read_hfselect_dir
from taskscout.pool.hub import is_hub_spec, read_hub_esm
from taskscout.pool.store import Pool


def add_hfselect(
    pool: Pool,
    specs: list[str],
    *,
    name: str | None = None,
    task_type: str = "",
    overwrite: bool = False,
) -> list[PoolEntry]:
    """Read hfselect ESM directories and ``hub:USER/REPO[@REV]`` repos and add them to ``pool``.

    Every ESM is read and validated before anything is added; then all are added at once. ``name`` names
    the source when a single ESM is added.
    """
    if not specs:
        raise PoolError("name at least one hfselect ESM directory or hub:USER/REPO")
    if name is not None and len(specs) > 1:
        raise PoolError("--name names one source; add several ESMs without it")
    if task_type not in ("", "classification", "regression"):
        raise PoolError(f"task type {task_type!r}: use classification or regression")
    pool._require_writable()
    esms = []
    for spec in specs:
        if is_hub_spec(spec):
            esms.append(read_hub_esm(spec, name=name, task_type=task_type))
        else:
            esms.append((read_hfselect_dir(spec, name=name, task_type=task_type), f"hfselect ESM {spec}"))
    return add_esms(pool, esms, overwrite=overwrite)
