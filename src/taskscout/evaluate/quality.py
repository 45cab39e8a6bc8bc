"""How good a method's rankings were on the reference benchmark, for people who use the rankings.

A ranking figure means nothing without chance and noise beside it, so wherever taskscout shows a
method's benchmark quality it shows three numbers: the method's mean NDCG over the benchmark's
targets, what a random order of the same sources scores, and the noise ceiling (what ranking by half
of the transfer seeds scores against the other half), plus whether the method beats random after the
multiple-comparison correction.

``taskscout bench`` writes these as ``summary.json`` beside its report; the package ships one such file
(``benchmark_data/quality.json``, copied from the reference benchmark's report, see benchmarks/README.md)
and ``taskscout rank`` / ``taskscout methods`` read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskscout.errors import TaskscoutError

__all__ = ["PACKAGED_QUALITY", "BenchmarkQuality", "MethodQuality", "load_benchmark_quality", "p_phrase"]

PACKAGED_QUALITY = Path(__file__).resolve().parent.parent / "benchmark_data" / "quality.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class MethodQuality:
    """One method on the benchmark: mean of the metric over targets, its 95 % bootstrap CI, the
    permutation p-value against random rankings, and whether it stays significant after the
    Benjamini-Hochberg correction over all methods benchmarked."""

    method: str
    mean: float
    ci_low: float
    ci_high: float
    p: float
    significant: bool
    targets: int


@dataclass(frozen=True)
class BenchmarkQuality:
    """A benchmark's summary: its size, chance and noise levels, and every method's quality."""

    protocol: str
    metric: str
    n_targets: int
    n_sources: int
    random: float
    noise_ceiling: float
    mean_reliability: float
    methods: dict[str, MethodQuality]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "protocol": self.protocol,
            "metric": self.metric,
            "n_targets": self.n_targets,
            "n_sources": self.n_sources,
            "random": self.random,
            "noise_ceiling": self.noise_ceiling,
            "mean_reliability": self.mean_reliability,
            "methods": {
                name: {k: v for k, v in vars(q).items() if k != "method"} for name, q in self.methods.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "benchmark summary") -> BenchmarkQuality:
        """Validate and read :meth:`to_dict`'s output; a one-line error naming ``origin`` otherwise."""
        try:
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {data.get('format')!r} is not {FORMAT_VERSION}")
            methods = {
                str(name): MethodQuality(
                    method=str(name),
                    mean=float(m["mean"]),
                    ci_low=float(m["ci_low"]),
                    ci_high=float(m["ci_high"]),
                    p=float(m["p"]),
                    significant=bool(m["significant"]),
                    targets=int(m["targets"]),
                )
                for name, m in data["methods"].items()
            }
            return cls(
                protocol=str(data["protocol"]),
                metric=str(data["metric"]),
                n_targets=int(data["n_targets"]),
                n_sources=int(data["n_sources"]),
                random=float(data["random"]),
                noise_ceiling=float(data["noise_ceiling"]),
                mean_reliability=float(data["mean_reliability"]),
                methods=methods,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TaskscoutError(
                f"{origin} is not a taskscout benchmark summary ({type(exc).__name__}: {exc}); "
                "regenerate it with `taskscout bench`"
            ) from None

    def describe(self, method: str) -> str:
        """One sentence on how well ``method`` ranked on this benchmark, with chance and noise beside it."""
        where = f"benchmark `{self.protocol}` ({self.n_targets} targets, {self.n_sources} sources)"
        reference = (
            f"a random order of the same sources scores {self.random:.1f} and the noise ceiling is "
            f"{_number(self.noise_ceiling)}"
        )
        q = self.methods.get(method)
        if q is None:
            return f"{method} was not run on {where}; there {reference}."
        verdict = (
            "better than random" if q.significant else "not measurably better than random"
        ) + f" ({p_phrase(q.p)}; significance corrected over {len(self.methods)} methods)"
        return (
            f"On {where}, {method} ranked with {self.metric} {q.mean:.1f} (95 % CI {q.ci_low:.1f}-"
            f"{q.ci_high:.1f}; {q.targets} targets); {reference}: {verdict}."
        )


def _number(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "unknown"


def p_phrase(p: float) -> str:
    """``p = 0.042`` / ``p < 0.001`` for prose (table cells use ``report.format_p``)."""
    if not math.isfinite(p):
        return "p unknown"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def load_benchmark_quality(path: str | Path | None = None) -> BenchmarkQuality | None:
    """The benchmark summary at ``path`` (default: the one shipped with the package); ``None`` when the
    default is absent (an installation without it), a one-line error when a file is unreadable."""
    file = Path(path) if path is not None else PACKAGED_QUALITY
    if path is None and not file.exists():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaskscoutError(f"cannot read benchmark summary {file}: {exc}") from None
    if not isinstance(data, dict):
        raise TaskscoutError(
            f"{file} is not a taskscout benchmark summary; regenerate it with `taskscout bench`"
        )
    return BenchmarkQuality.from_dict(data, origin=str(file))
