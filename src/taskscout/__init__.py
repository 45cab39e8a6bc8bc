"""taskscout: rank source datasets for intermediate-task transfer.

The public API, all importable from the package itself::

    import taskscout

    ranking = taskscout.rank("my_data.csv")          # -> Ranking (.to_pandas(), .to_json())
    taskscout.rank(task, pool="DIR", method="tupate-lora", load={"label_column": "y"})
    taskscout.load_task("catalog:NAME")              # -> Task (file, DataFrame, "catalog:NAME", "hf:ID")
    taskscout.list_methods(); taskscout.get_method("esm-logme")
    taskscout.open_pool("DIR")                       # -> Pool
    taskscout.logme(features, labels)                # exact LogME
    taskscout.esm_logme(features, labels, weights, biases)

Names are imported on first use, so ``import taskscout`` (and the CLI's ``--help``) stays fast: torch
loads only when a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "rank": "taskscout.ranking",
    "Ranking": "taskscout.ranking",
    "RankedSource": "taskscout.ranking",
    "Task": "taskscout.data.task",
    "load_task": "taskscout.data.loaders",
    "LoadOptions": "taskscout.data.loaders",
    "Pool": "taskscout.pool.store",
    "open_pool": "taskscout.pool.store",
    "get_method": "taskscout.methods",
    "list_methods": "taskscout.methods",
    "SelectionMethod": "taskscout.methods.base",
    "logme": "taskscout.methods.logme",
    "esm_logme": "taskscout.methods.logme",
}

__all__ = [
    "LoadOptions",
    "Pool",
    "RankedSource",
    "Ranking",
    "SelectionMethod",
    "Task",
    "__version__",
    "esm_logme",
    "get_method",
    "list_methods",
    "load_task",
    "logme",
    "open_pool",
    "rank",
]

if TYPE_CHECKING:
    from taskscout.data.loaders import LoadOptions, load_task
    from taskscout.data.task import Task
    from taskscout.methods import get_method, list_methods
    from taskscout.methods.base import SelectionMethod
    from taskscout.methods.logme import esm_logme, logme
    from taskscout.pool.store import Pool, open_pool
    from taskscout.ranking import RankedSource, Ranking, rank


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'taskscout' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    # Bind it on the package so later look-ups skip this hook; no submodule is named like an export,
    # so importing one can never rebind a public name to a module.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
