"""Source-selection methods: one module per family, behind :class:`~.base.SelectionMethod`."""

from __future__ import annotations

from taskscout.errors import TaskscoutError


def registry() -> dict[str, type]:
    """Method name -> class, for every method taskscout implements."""
    from taskscout.methods import esm_logme

    return {cls.name: cls for cls in (*esm_logme.METHODS,)}


def get_method(name: str):
    """An instance of the method called ``name``."""
    methods = registry()
    if name not in methods:
        raise TaskscoutError(
            f"unknown method {name!r}; available: {', '.join(sorted(methods))} (see `taskscout methods`)"
        )
    return methods[name]()
