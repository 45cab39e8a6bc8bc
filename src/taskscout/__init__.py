"""taskscout: rank source datasets for intermediate-task transfer.

Public API::

    taskscout.logme(features, labels, regression=False)
    taskscout.esm_logme(features, labels, weights, biases, regression=False)
    taskscout.load_task(source, ...)            # file, DataFrame, "catalog:NAME", "hf:ID"
    taskscout.rank(target, pool=None, ...)      # -> Ranking (.to_pandas())
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "esm_logme", "load_task", "logme", "rank"]


def __getattr__(name: str):
    # Lazy imports keep `import taskscout` (and the CLI's --help) fast: torch loads only when needed.
    if name in ("logme", "esm_logme"):
        from taskscout.methods import logme as module

        return getattr(module, name)
    if name == "load_task":
        from taskscout.data.loaders import load_task

        return load_task
    if name == "rank":
        from taskscout.rank import rank

        return rank
    raise AttributeError(f"module 'taskscout' has no attribute {name!r}")
