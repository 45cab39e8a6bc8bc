"""Where taskscout keeps its files.

Everything persistent lives under one home directory, ``$TASKSCOUT_HOME`` or the user's cache directory,
so a user can move, share or delete it as one unit.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def home() -> Path:
    """The taskscout home directory (created on first use)."""
    root = Path(os.environ.get("TASKSCOUT_HOME") or user_cache_dir("taskscout")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    """A named sub-directory of the home (``tasks``, ``downloads``, ``models``, ``embeddings``, ...)."""
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
