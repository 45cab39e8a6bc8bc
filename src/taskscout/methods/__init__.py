"""Source-selection methods: one module per family, behind :class:`~.base.SelectionMethod`.

Methods are found through a registry: the families taskscout ships, plus every method an installed
package declares under the entry-point group ``taskscout.methods``, e.g. in its ``pyproject.toml``::

    [project.entry-points."taskscout.methods"]
    my-method = "my_package.selection:MyMethod"

The entry point's object is a :class:`~.base.SelectionMethod` subclass (its ``name`` attribute is the
method's name) or a module with a ``METHODS`` list of such classes. A plug-in cannot replace a built-in
method: a clashing or broken plug-in is left out with a warning naming it.
"""

from __future__ import annotations

import warnings
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from taskscout.errors import TaskscoutError

__all__ = ["ENTRY_POINT_GROUP", "get_method", "list_methods", "plugin_problems", "registry"]

ENTRY_POINT_GROUP = "taskscout.methods"


def _builtin() -> dict[str, type]:
    from taskscout.methods import curvegrad, esm_logme, source_model, taskemb, text_stats, textemb, tupate

    families = (esm_logme, textemb, text_stats, source_model, tupate, taskemb, curvegrad)
    return {cls.name: cls for family in families for cls in family.METHODS}


def _plugin_classes(entry_point: EntryPoint) -> list[type]:
    """The SelectionMethod classes one entry point provides (a class, or a module's ``METHODS``)."""
    from taskscout.methods.base import SelectionMethod

    where = f"entry point {entry_point.name!r} ({entry_point.value}) of group {ENTRY_POINT_GROUP!r}"
    try:
        loaded: Any = entry_point.load()
    except Exception as exc:  # a broken plug-in must not take the built-in methods down with it
        raise TaskscoutError(f"cannot load {where}: {type(exc).__name__}: {exc}") from None
    classes = list(getattr(loaded, "METHODS", [loaded])) if not isinstance(loaded, type) else [loaded]
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, SelectionMethod)) or not cls.name:
            raise TaskscoutError(f"{where} must name a SelectionMethod subclass with a name, got {cls!r}")
    return classes


def registry() -> dict[str, type]:
    """Method name -> class: the built-in methods plus those registered by installed packages.

    A plug-in that cannot be loaded, is not a SelectionMethod or reuses a taken name is left out with
    a :class:`UserWarning` naming it (see :func:`plugin_problems`); the other methods stay usable.

    Returns:
        Every registered method class, by name.
    """
    methods, problems = _scan()
    for problem in problems:
        warnings.warn(problem, UserWarning, stacklevel=2)
    return methods


def plugin_problems() -> list[str]:
    """One line per plug-in entry point that was left out of the registry, saying why."""
    return _scan()[1]


def _scan() -> tuple[dict[str, type], list[str]]:
    methods = _builtin()
    problems: list[str] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            classes = _plugin_classes(entry_point)
        except TaskscoutError as exc:
            problems.append(str(exc))
            continue
        for cls in classes:
            if cls.name in methods and methods[cls.name] is not cls:
                taken = methods[cls.name]
                problems.append(
                    f"method {cls.name!r} of entry point {entry_point.value} is left out: the name is "
                    f"taken by {taken.__module__}.{taken.__name__}; rename one of them"
                )
                continue
            methods[cls.name] = cls
    return methods, problems


def list_methods() -> list[str]:
    """The names of every registered method, sorted (``fusion:A+B`` combines any of them).

    Returns:
        Method names, as accepted by :func:`get_method` and ``rank(method=...)``.
    """
    return sorted(registry())


def get_method(name: str) -> Any:
    """An instance of the method called ``name``; ``fusion:A+B`` fuses methods A and B by reciprocal rank.

    Args:
        name: a registered method name (see :func:`list_methods`) or ``fusion:A+B[+...]``.

    Returns:
        A :class:`~taskscout.methods.base.SelectionMethod` with its default configuration.

    Raises:
        TaskscoutError: the name is not registered.
    """
    if name.startswith("fusion:"):
        from taskscout.methods.fusion import RankFusion

        return RankFusion([get_method(member) for member in name.removeprefix("fusion:").split("+")])
    methods = registry()
    if name not in methods:
        raise TaskscoutError(
            f"unknown method {name!r}; available: {', '.join(sorted(methods))}, "
            "or fusion:A+B (see `taskscout methods`)"
        )
    return methods[name]()
