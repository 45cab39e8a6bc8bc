"""The one switch for what library calls print while they work.

Every long taskscout call takes ``progress: bool``: ``True`` draws taskscout's own bars (tqdm, on
stderr), ``False`` is silent. Libraries underneath draw bars and log warnings of their own
(transformers' "Loading weights" bar and load report, the Hub client's download bars);
:func:`library_output` turns those off for the duration of a silent call and restores the user's
settings afterwards, so ``progress=False`` means nothing is printed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["library_output"]

_LOGGERS = ("transformers", "sentence_transformers", "huggingface_hub", "datasets", "peft")


@contextmanager
def library_output(enabled: bool) -> Iterator[None]:
    """Silence (``enabled=False``) or leave alone (``True``) the bars and warnings of libraries below.

    Only libraries already imported, or importable cheaply, are touched; their previous settings are
    restored on exit, also when the body raises.

    Args:
        enabled: ``True`` leaves every library's output as configured; ``False`` silences it.

    Yields:
        Nothing; the body runs with the chosen setting.
    """
    if enabled:
        yield
        return
    restore = []
    transformers_logging = _module("transformers.utils.logging")
    if transformers_logging is not None and transformers_logging.is_progress_bar_enabled():
        transformers_logging.disable_progress_bar()
        restore.append(transformers_logging.enable_progress_bar)
    hub_utils = _module("huggingface_hub.utils")
    if hub_utils is not None and not hub_utils.are_progress_bars_disabled():
        hub_utils.disable_progress_bars()
        restore.append(hub_utils.enable_progress_bars)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        level = logger.level
        logger.setLevel(logging.ERROR)
        restore.append(lambda logger=logger, level=level: logger.setLevel(level))
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()


def _module(name: str):
    """``name`` imported, if its top-level package is installed (None otherwise)."""
    top = name.split(".")[0]
    if top not in sys.modules:
        import importlib.util

        if importlib.util.find_spec(top) is None:
            return None
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None
