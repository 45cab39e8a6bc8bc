"""Where taskscout keeps its files.

Everything persistent lives under one home directory, ``$TASKSCOUT_HOME`` or the user's cache directory,
so a user can move, share or delete it as one unit.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

from taskscout.errors import TaskscoutError


def home() -> Path:
    """The taskscout home directory (created on first use); a one-line error if it cannot be used."""
    configured = os.environ.get("TASKSCOUT_HOME")
    root = Path(configured or user_cache_dir("taskscout")).expanduser()
    _make_dir(root, "TASKSCOUT_HOME" if configured else "the taskscout cache directory")
    return root


def subdir(name: str) -> Path:
    """A named sub-directory of the home (``tasks``, ``downloads``, ``models``, ``embeddings``, ...)."""
    path = home() / name
    _make_dir(path, "the taskscout home")
    return path


def _make_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskscoutError(
            f"{what} {path} cannot be used ({exc.strerror or exc}); "
            "set TASKSCOUT_HOME to a writable directory"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise TaskscoutError(f"{what} {path} is not writable; set TASKSCOUT_HOME to a writable directory")
