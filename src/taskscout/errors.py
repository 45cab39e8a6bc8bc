"""User-facing errors.

Everything a user can cause (a bad file, a bad column, an unknown task, a broken pool entry) raises
:class:`TaskscoutError` with a one-line message that names the offending thing and says what to do.
The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class TaskscoutError(Exception):
    """An error caused by input or environment that the user can fix; the message is one line."""

    exit_code: int = 2


class DataError(TaskscoutError):
    """A data file, table, column or label problem."""


class CatalogError(TaskscoutError):
    """A catalog task could not be found, fetched or verified."""


class PoolError(TaskscoutError):
    """A pool or one of its entries is missing, incompatible or corrupt."""
