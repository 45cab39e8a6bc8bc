"""Evaluation: transfer experiments, ranking metrics, signal measures, the benchmark and its reports.

The metrics (:mod:`.metrics`), signal measures (:mod:`.signal`) and the packaged benchmark summary
(:mod:`.quality`) are available from here; they are
imported on first use, so importing one module of this package does not pay for them (scoring of
predictions lives in :mod:`taskscout.train.scoring`: lower layers use it).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(
        (
            "aggregate",
            "align_sources",
            "bootstrap_ci",
            "evaluate_ranking",
            "kendall_tau",
            "ndcg_schulte",
            "ndcg_vu",
            "rank_of_best",
            "regret_at_k",
            "spearman",
            "top1_gain",
        ),
        "taskscout.evaluate.metrics",
    ),
    **dict.fromkeys(
        (
            "NoiseCeiling",
            "detectable_gain",
            "noise_ceiling",
            "paired_gain_tests",
            "paired_method_p_value",
            "permutation_p_value",
            "pooled_seed_noise",
            "random_expectation",
            "random_null",
            "seed_splits",
            "seed_table",
            "signal_by_target",
            "split_half_reliability",
        ),
        "taskscout.evaluate.signal",
    ),
    **dict.fromkeys(
        ("BenchmarkQuality", "MethodQuality", "load_benchmark_quality"), "taskscout.evaluate.quality"
    ),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
