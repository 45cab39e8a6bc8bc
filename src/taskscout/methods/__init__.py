"""Source-selection methods: one module per family, behind :class:`~.base.SelectionMethod`."""

from __future__ import annotations

from taskscout.errors import TaskscoutError


def registry() -> dict[str, type]:
    """Method name -> class, for every method taskscout implements."""
    from taskscout.methods import curvegrad, esm_logme, source_model, taskemb, text_stats, textemb, tupate

    families = (esm_logme, textemb, text_stats, source_model, tupate, taskemb, curvegrad)
    return {cls.name: cls for family in families for cls in family.METHODS}


def get_method(name: str):
    """An instance of the method called ``name``; ``fusion:A+B`` fuses methods A and B by reciprocal rank."""
    if name.startswith("fusion:"):
        from taskscout.methods.fusion import RankFusion

        return RankFusion(name.removeprefix("fusion:").split("+"))
    methods = registry()
    if name not in methods:
        raise TaskscoutError(
            f"unknown method {name!r}; available: {', '.join(sorted(methods))}, "
            "or fusion:A+B (see `taskscout methods`)"
        )
    return methods[name]()
