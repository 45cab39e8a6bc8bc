"""Benchmark reports: Markdown and a self-contained HTML page built around a reader's questions.

Which method should I use, how sure are we, and how does it compare with picking sources at random?
Every results table therefore carries the random-ranking row and the noise ceiling, a permutation
p-value against random, and the ground truth's reliability (:mod:`taskscout.evaluate.signal`).

Figures are PNG embedded as base64 (one file that opens anywhere, nothing fetched at view time); the
pages are rendered from the jinja2 templates in ``taskscout/evaluate/templates``.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from taskscout.errors import TaskscoutError
from taskscout.evaluate.benchmark import MethodResult, with_reused_costs
from taskscout.evaluate.groundtruth import GroundTruth
from taskscout.evaluate.metrics import align_sources, bootstrap_ci, regret_at_k
from taskscout.evaluate.quality import BenchmarkQuality, MethodQuality, p_phrase
from taskscout.evaluate.signal import (
    detectable_gain,
    lower_is_better,
    noise_ceiling,
    paired_gain_tests,
    paired_method_p_value,
    permutation_p_value,
    random_expectation,
    random_null,
    seed_table,
    split_half_reliability,
)
from taskscout.io import write_bytes, write_json

TABLE_METRICS = ("ndcg", "ndcg_vu", "regret@1", "regret@3", "regret@5", "rho", "spearman")
METRIC_LABELS = {
    "ndcg": "NDCG",
    "ndcg_vu": "NDCG (gain)",
    "regret@1": "Regret@1 %",
    "regret@3": "Regret@3 %",
    "regret@5": "Regret@5 %",
    "rho": "rho",
    "spearman": "Spearman",
}
PRIMARY = "ndcg"  # the papers' headline metric; the table is sorted by it and its p-value is shown
REGRET_KS = tuple(range(1, 11))
ALPHA = 0.05
# P2 time per source below which the headline treats cost as negligible: a pool of 1,000 sources ranks
# in under a minute on one core, a wait nobody trades ranking quality for. Between such methods it
# recommends the better one; above it, the cheaper of those the best does not beat measurably.
NEGLIGIBLE_MS_PER_SOURCE = 60.0
# Families of the methods this project ships, for colours; unknown names fall back to their prefix.
METHOD_FAMILIES = {
    "esm-logme": "ESM",
    "esm-sgd-logme": "ESM",
    "esm-mlp-logme": "ESM",
    "logme-full": "source models",
    "leep": "source models",
    "nce": "source models",
    "hscore": "source models",
    "hscore-reg": "source models",
    "frozen": "source models",
    "tupate-bitfit": "TuPaTE",
    "tupate-lora": "TuPaTE",
    "tupate-prefix": "TuPaTE",
    "tupate-ensemble": "TuPaTE",
    "taskemb": "TaskEmb",
    "curvegrad": "TaskEmb",
    "textemb": "text statistics",
    "vocab-overlap": "text statistics",
    "datasize": "text statistics",
}
FAMILY_COLOURS = {
    "ESM": "tab:blue",
    "source models": "tab:orange",
    "TuPaTE": "tab:green",
    "TaskEmb": "tab:red",
    "text statistics": "tab:purple",
    "fusion": "tab:brown",
}


def method_family(method: str) -> str:
    """The family a method belongs to (colour and grouping in the report)."""
    if method.startswith("fusion:"):
        return "fusion"
    return METHOD_FAMILIES.get(method, method.split("-", 1)[0])


# --------------------------------------------------------------------------------------------------
# The numbers behind the report
# --------------------------------------------------------------------------------------------------


@dataclass
class BenchmarkSignal:
    """Everything the report says about chance and noise, computed once from results and ground truth.

    Attributes:
        random: metric -> expected mean over targets of a random ranking (exact, per target averaged).
        random_range: metric -> (low, high) 95 % range of that mean over random rankings.
        random_null: per target, metric -> values of random rankings (for p-values and the band).
        p_values: method -> metric -> one-sided permutation p-value against random (pooled over targets).
        q_primary: method -> Benjamini-Hochberg adjusted p-value of :data:`PRIMARY` over the methods.
        reliability: target -> split-half reliability of the source ordering (NaN without runs).
        ceiling: target -> noise-ceiling metrics; ``ceiling_random``: chance against the same halves.
        gains: target -> paired tests of every source against the baseline.
        detectable: target -> smallest mean gain those tests call significant (p < 0.05, all seeds).
    """

    random: dict[str, float]
    random_range: dict[str, tuple[float, float]]
    p_values: dict[str, dict[str, float]]
    q_primary: dict[str, float]
    reliability: dict[str, float]
    ceiling: dict[str, dict[str, float]]
    ceiling_random: dict[str, dict[str, float]]
    gains: dict[str, pd.DataFrame]
    random_null: dict[str, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)
    n_permutations: int = 0
    detectable: dict[str, float] = field(default_factory=dict)

    @property
    def mean_reliability(self) -> float:
        values = [v for v in self.reliability.values() if math.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    def ceiling_summary(self) -> dict[str, dict[str, float]]:
        """Mean over targets and bootstrap CI of each noise-ceiling metric (like a method's summary)."""
        return _summaries(self.ceiling)

    def significant(self, method: str) -> bool:
        return self.q_primary.get(method, float("nan")) < ALPHA


def _summaries(per_target: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    metrics = sorted({m for row in per_target.values() for m in row})
    out = {}
    for m in metrics:
        values = [per_target[t].get(m, float("nan")) for t in sorted(per_target)]
        mean, low, high = bootstrap_ci(values)
        out[m] = {"mean": mean, "ci_low": low, "ci_high": high}
    return out


def compute_signal(
    results: Sequence[MethodResult],
    gt: GroundTruth,
    *,
    n_permutations: int = 2000,
    random_state: int = 0,
    ks: Sequence[int] = REGRET_KS,
) -> BenchmarkSignal:
    """Random expectation and null, p-values, reliability, noise ceiling and paired gain tests."""
    targets = gt.complete_targets()
    metric_ks = sorted({1, 3, 5, *ks})
    null_cache: dict[tuple[str, tuple[str, ...]], dict[str, np.ndarray]] = {}

    def null_for(target: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        key = (target, names)
        if key not in null_cache:
            truth = gt.truth(target)
            null_cache[key] = random_null(
                {s: truth[s] for s in names},
                gt.baseline(target),
                ks=metric_ks,
                n_permutations=n_permutations,
                # One seed per target: with one seed for all, the i-th random ranking would be the same
                # order of (alphabetically sorted) sources on every target, so the null of the mean
                # over targets would be as wide as one target's and every p-value too large.
                random_state=(random_state, zlib.crc32(target.encode("utf-8"))),
            )
        return null_cache[key]

    # Random rankings of every measured source of each target (the "random" row).
    all_sources = {t: tuple(sorted(align_sources(gt.truth(t), gt.truth(t), t).names)) for t in targets}
    exact = {t: random_expectation(gt.truth(t), gt.baseline(t), t, ks=metric_ks) for t in targets}
    random_mean, random_range = {}, {}
    for metric in exact[targets[0]] if targets else ():
        values = [exact[t][metric] for t in targets if math.isfinite(exact[t][metric])]
        random_mean[metric] = float(np.mean(values)) if values else float("nan")
        if metric == "kendall":
            continue
        stack = np.vstack([null_for(t, all_sources[t])[metric] for t in targets])
        means = np.nanmean(stack, axis=0) if np.isfinite(stack).any() else stack[0]
        low, high = np.nanquantile(means, [0.025, 0.975]) if np.isfinite(means).any() else (np.nan, np.nan)
        random_range[metric] = (float(low), float(high))

    p_values: dict[str, dict[str, float]] = {}
    for r in results:
        frame = r.per_target.set_index("target") if len(r.per_target) else pd.DataFrame()
        used = [t for t in targets if t in r.scores and t in frame.index]
        nulls = {
            t: null_for(t, tuple(sorted(align_sources(r.scores[t], gt.truth(t), t).names))) for t in used
        }
        p_values[r.method] = {
            m: permutation_p_value([float(frame.loc[t, m]) for t in used], [nulls[t][m] for t in used], m)
            for m in TABLE_METRICS
            if m in frame.columns
        }
    primary = {m: p[PRIMARY] for m, p in p_values.items() if math.isfinite(p.get(PRIMARY, float("nan")))}
    adjusted = stats.false_discovery_control(list(primary.values())) if primary else []
    q_primary = dict(zip(primary, map(float, adjusted), strict=True))

    reliability, ceiling, ceiling_random, gains, detectable = {}, {}, {}, {}, {}
    for t in targets:
        table = seed_table(gt.runs, t) if gt.runs is not None else pd.DataFrame()
        reliability[t] = split_half_reliability(table, exclude=t) if not table.empty else float("nan")
        if not table.empty:
            c = noise_ceiling(table, t, ks=metric_ks)
            if c.metrics:
                ceiling[t], ceiling_random[t] = c.metrics, c.random
            gains[t] = paired_gain_tests(table, exclude=t)
            detectable[t] = detectable_gain(table, exclude=t)
    return BenchmarkSignal(
        random=random_mean,
        random_range=random_range,
        p_values=p_values,
        q_primary=q_primary,
        reliability=reliability,
        ceiling=ceiling,
        ceiling_random=ceiling_random,
        gains=gains,
        random_null={t: null_for(t, all_sources[t]) for t in targets},
        n_permutations=n_permutations,
        detectable=detectable,
    )


# --------------------------------------------------------------------------------------------------
# Formatting: as many digits as the confidence intervals justify, units on costs
# --------------------------------------------------------------------------------------------------


MAX_DECIMALS = 2


def decimals_for(half_width: float) -> int:
    """Decimals that show a ± half-width with one significant digit (two when it starts with 1)."""
    if not (math.isfinite(half_width) and half_width > 0):
        return 2
    exponent = math.floor(math.log10(half_width))
    leading = half_width / 10**exponent
    return max(0, -exponent + (1 if leading < 2 else 0))


def format_ci(mean: float, half_width: float, decimals: int) -> str:
    """``76.9 ±6.1`` style; the half-width is omitted when unknown."""
    if not math.isfinite(mean):
        return "–"
    if not math.isfinite(half_width):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ±{half_width:.{decimals}f}"


def format_duration_ms(ms: float) -> str:
    """A per-source time with its unit: ``0.3 ms``, ``8.5 ms``, ``1.8 s``, ``2.1 min``."""
    if not math.isfinite(ms):
        return "–"
    if ms < 0.05:
        return "<0.1 ms"
    if ms < 1000:
        return f"{ms:.2g} ms" if ms < 10 else f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2g} s" if ms < 10_000 else f"{ms / 1000:.0f} s"
    return f"{ms / 60_000:.1f} min"


def format_bytes(n: float) -> str:
    """A size with its unit (powers of 1,024): ``0 B``, ``74 KB``, ``1.2 MB``."""
    if not math.isfinite(n):
        return "–"
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            value = n / scale
            return f"{value:.2g} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n:.0f} B"


def format_p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def _half_width(summary: dict[str, float]) -> float:
    low, high = summary.get("ci_low", float("nan")), summary.get("ci_high", float("nan"))
    return (high - low) / 2 if math.isfinite(low) and math.isfinite(high) else float("nan")


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def sort_by_quality(results: Sequence[MethodResult], metric: str = PRIMARY) -> list[MethodResult]:
    """Best first by the mean of ``metric`` (methods without a value last)."""
    sign = 1.0 if lower_is_better(metric) else -1.0

    def key(r: MethodResult) -> tuple[bool, float, str]:
        mean = r.summary.get(metric, {}).get("mean", float("nan"))
        return (not math.isfinite(mean), sign * mean if math.isfinite(mean) else 0.0, r.method)

    return sorted(results, key=key)


def results_table(results: Sequence[MethodResult], signal: BenchmarkSignal | None = None) -> pd.DataFrame:
    """One row per method (sorted by quality), then the random and noise-ceiling rows, as strings.

    Columns: method, one ``mean ±half-width`` cell per metric of :data:`TABLE_METRICS` (95 %
    bootstrap CI over targets; each cell rounded to what its own interval justifies), the
    permutation p-value of :data:`PRIMARY` against random with ``*`` when significant after
    Benjamini-Hochberg correction over the methods, P2 time and storage per source, targets ranked.
    """
    ordered = sort_by_quality(results)
    rows: list[dict[str, object]] = []
    for r in ordered:
        rows.append(
            {
                "method": r.method,
                **{
                    m: (r.summary.get(m, {}).get("mean", np.nan), _half_width(r.summary.get(m, {})))
                    for m in TABLE_METRICS
                },
                "p": r.method,
                "p2": format_duration_ms(r.p2_ms_per_source),
                "storage": format_bytes(r.storage_bytes_per_source),
                "targets": int(r.per_target["regret@1"].notna().sum()) if len(r.per_target) else 0,
            }
        )
    n_targets = max((row["targets"] for row in rows), default=0)
    if signal is not None:
        random_row: dict[str, object] = {"method": REFERENCE_ROWS[0]}
        for m in TABLE_METRICS:
            low, high = signal.random_range.get(m, (np.nan, np.nan))
            random_row[m] = (signal.random.get(m, np.nan), (high - low) / 2)
        rows.append({**random_row, "p": "", "p2": "–", "storage": "–", "targets": n_targets})
        ceiling = signal.ceiling_summary()
        if ceiling:
            ceiling_row: dict[str, object] = {"method": REFERENCE_ROWS[1]}
            for m in TABLE_METRICS:
                s = ceiling.get(m, {})
                ceiling_row[m] = (s.get("mean", np.nan), _half_width(s))
            rows.append({**ceiling_row, "p": "", "p2": "–", "storage": "–", "targets": len(signal.ceiling)})
    frame = pd.DataFrame(rows)
    # Each cell to what its own interval justifies (one column-wide precision set by the narrowest
    # interval, the noise ceiling's, printed "1.76 ±1.28" for methods whose CI is points wide), and
    # never more than MAX_DECIMALS: on 0-100 and -1..1 scales a narrower interval changes no reading.
    for m in TABLE_METRICS:
        frame[m] = [format_ci(mean, hw, min(decimals_for(hw), MAX_DECIMALS)) for mean, hw in frame[m]]

    def p_cell(method: str) -> str:
        if not method or signal is None:
            return ""
        p = signal.p_values.get(method, {}).get(PRIMARY, float("nan"))
        return format_p(p) + (" *" if signal.significant(method) else "")

    frame["p"] = [p_cell(v) for v in frame["p"]]
    return frame


REFERENCE_ROWS = ("random ranking (expected)", "noise ceiling (half the seeds)")
TABLE_HEADER = {
    "method": "method",
    **METRIC_LABELS,
    "p": "p (NDCG vs random)",
    "p2": "P2 time / source",
    "storage": "storage / source",
    "targets": "targets",
}


def markdown_frame(frame: pd.DataFrame, header: dict[str, str] | None = None) -> str:
    """A DataFrame of strings/numbers as a Markdown table (pandas' own needs the optional `tabulate`)."""
    columns = list(frame.columns)
    names = [str((header or {}).get(c, c)) for c in columns]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def markdown_table(results: Sequence[MethodResult], signal: BenchmarkSignal | None = None) -> str:
    """The main results table in Markdown (the README's "Results" table)."""
    return markdown_frame(results_table(with_reused_costs(results), signal), TABLE_HEADER)


def main_methods(
    results: Sequence[MethodResult], signal: BenchmarkSignal | None = None
) -> list[MethodResult]:
    """The handful of methods the figures follow: the best, the recommended one (with ``signal``),
    ESM-LogME and the best TuPaTE variant."""
    ordered = sort_by_quality(results)
    chosen: list[MethodResult] = ordered[:1]
    recommendation = recommend(results, signal) if signal is not None else None
    if recommendation is not None:
        chosen.append(recommendation.pick)
    by_name = {r.method: r for r in ordered}
    if "esm-logme" in by_name:
        chosen.append(by_name["esm-logme"])
    tupate = [r for r in ordered if r.method.startswith("tupate")]
    if tupate:
        chosen.append(tupate[0])
    unique: list[MethodResult] = []
    for r in chosen:
        if r not in unique:
            unique.append(r)
    return unique


def transfer_summary(signal: BenchmarkSignal) -> str:
    """One sentence under the per-target table: how large a gain the seed tests can see, against how
    many sources gain at all, so a reader can tell "no source helps" from "the test cannot see it"."""
    detectable = [100 * v for v in signal.detectable.values() if math.isfinite(v)]
    tested = [g for g in signal.gains.values() if not g.empty]
    if not detectable or not tested:
        return ""
    pairs = sum(len(g) for g in tested)
    positive = sum(int((g["gain"] > 0).sum()) for g in tested)
    losing = sum(1 for g in tested if g["gain"].median() < 0)
    return (
        f"With these seeds a paired test detects a mean gain of {min(detectable):.1f}-"
        f"{max(detectable):.1f} points (p < {ALPHA}, by target); {positive} of {pairs} source-target pairs "
        f"gain anything at all, and the median source loses to no transfer on {losing} of {len(tested)} "
        "targets."
    )


def per_target_table(
    results: Sequence[MethodResult], gt: GroundTruth, signal: BenchmarkSignal
) -> pd.DataFrame:
    """One row per target: reliability, baseline, best source and its gain, how many sources beat the
    baseline beyond seed noise, and each main method's first pick with its gain (points)."""
    rows = []
    mains = main_methods(results, signal)
    for t in gt.complete_targets():
        truth, base = gt.truth(t), gt.baseline(t)
        truth = {s: v for s, v in truth.items() if s != t}
        best = max(truth, key=lambda s: (truth[s], s)) if truth else ""
        gains = signal.gains.get(t)
        row: dict[str, object] = {
            "target": t,
            "reliability": f"{signal.reliability.get(t, float('nan')):.2f}",
            "no transfer": f"{100 * base:.1f}",
            "best source": best,
            "gain": f"{100 * (truth[best] - base):+.1f}" if best else "–",
            "sources > baseline": "–"
            if gains is None or gains.empty
            else f"{int((gains['p'] < ALPHA).sum())} / {int(gains['significant'].sum())}",
        }
        for r in mains:
            scores = r.scores.get(t)
            aligned = align_sources(scores, truth, t) if scores else None
            if aligned is None or len(aligned) == 0:
                row[r.method] = "–"
            else:
                pick = aligned.names[0]
                row[r.method] = f"{pick} ({100 * (truth[pick] - base):+.1f})"
        rows.append(row)
    return pd.DataFrame(rows)


def wins_table(results: Sequence[MethodResult], metric: str = "regret@3") -> pd.DataFrame:
    """Target x method values of one metric, plus which method is best on each target (ties listed)."""
    frame = pd.DataFrame({r.method: r.per_target.set_index("target")[metric] for r in results})
    best_value = frame.min(axis=1) if lower_is_better(metric) else frame.max(axis=1)
    best = frame.apply(
        lambda row: ", ".join(m for m in frame.columns if np.isclose(row[m], best_value[row.name])), axis=1
    )
    # A method that cannot rank a target (e.g. LEEP on a regression target) shows a dash, not "nan".
    out = frame.map(lambda v: f"{v:.1f}" if math.isfinite(v) else "–")
    out["best"] = best
    return out.reset_index(names="target")


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def tradeoff_figure(results: Sequence[MethodResult], signal: BenchmarkSignal, metric: str = PRIMARY):
    """Quality against P2 cost per source (log axis): one labelled point per method, families coloured,
    random and noise ceiling as reference lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 6))
    floor = 0.01  # ms; a method that costs nothing measurable is drawn here
    seen_families = set()
    points: list[tuple[float, float, str]] = []
    for r in results:
        s = r.summary.get(metric, {})
        mean = s.get("mean", np.nan)
        if not math.isfinite(mean):
            continue
        x = max(r.p2_ms_per_source, floor) if math.isfinite(r.p2_ms_per_source) else floor
        family = method_family(r.method)
        colour = FAMILY_COLOURS.get(family, "tab:gray")
        low, high = s.get("ci_low", np.nan), s.get("ci_high", np.nan)
        ax.errorbar(
            x,
            mean,
            yerr=[[mean - low], [high - mean]] if math.isfinite(low) else None,
            fmt="o",
            color=colour,
            alpha=0.9,
            capsize=0,
            elinewidth=0.6,
            ecolor=(0.5, 0.5, 0.5, 0.35),
            label=family if family not in seen_families else None,
            markeredgecolor="black" if signal.significant(r.method) else colour,
        )
        seen_families.add(family)
        points.append((x, mean, r.method.removeprefix("fusion:")))
    ax.set_xscale("log")
    _place_labels(fig, ax, points)
    random = signal.random.get(metric, np.nan)
    if math.isfinite(random):
        low, high = signal.random_range.get(metric, (np.nan, np.nan))
        ax.axhline(random, color="gray", linestyle="--", linewidth=1, label="random ranking (95 % range)")
        if math.isfinite(low):
            ax.axhspan(low, high, color="gray", alpha=0.12)
    ceiling = signal.ceiling_summary().get(metric, {}).get("mean", np.nan)
    if math.isfinite(ceiling):
        ax.axhline(
            ceiling, color="black", linestyle=":", linewidth=1.2, label="noise ceiling (half the seeds)"
        )
    ax.set_xlabel("P2 time per source (ms, log scale; free methods drawn at 0.01 ms)")
    ax.set_ylabel(f"mean {METRIC_LABELS.get(metric, metric)} over targets (95 % CI)")
    ax.set_title("Quality against cost (black edge: beats random, FDR 5 %)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def _place_labels(fig, ax, points: list[tuple[float, float, str]]) -> None:
    """Label each point where its text covers no other label, no marker and nothing outside the axes
    (greedy, top to bottom, over candidate offsets of growing distance; a thin leader line when the
    label sits away from its point). Where every candidate collides, the one covering least is kept."""
    from matplotlib.transforms import Bbox

    fig.canvas.draw()  # fixes the axes limits and transforms used to measure the labels
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    # px around a marker that no other label may cover: a label that close reads as that point's label
    radius = 10.0
    markers = [
        Bbox.from_extents(px - radius, py - radius, px + radius, py + radius)
        for px, py in (ax.transData.transform((x, y)) for x, y, _ in points)
    ]
    offsets = [(5, 2), (5, -10), (-5, 2), (-5, -10), (5, 12), (-5, 12), (5, -20), (-5, -20)]
    offsets += [(dx, dy) for dy in (22, -30, 32, -40, 42, -50, 52) for dx in (8, -8, 30, -30)]

    def overlap(a: Bbox, b: Bbox) -> float:
        return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))

    def annotate(x: float, y: float, text: str, dx: int, dy: int, leader: bool = False):
        arrow = {"arrowstyle": "-", "color": "0.6", "lw": 0.5} if leader else None
        label = ax.annotate(
            text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7,
            ha="left" if dx > 0 else "right", arrowprops=arrow,
        )  # fmt: skip
        return label, label.get_window_extent(renderer).expanded(1.02, 1.1)

    placed: list[Bbox] = []
    order = sorted(range(len(points)), key=lambda i: (-points[i][1], points[i][0]))
    for i in order:
        x, y, text = points[i]
        obstacles = placed + markers[:i] + markers[i + 1 :]
        best: tuple[float, tuple[int, int]] | None = None
        for dx, dy in offsets:
            label, box = annotate(x, y, text, dx, dy)
            label.remove()
            # Area over other labels and markers, plus any part outside the axes.
            cost = sum(overlap(box, o) for o in obstacles) + box.width * box.height - overlap(box, frame)
            if best is None or cost < best[0]:
                best = (cost, (dx, dy))
            if cost == 0:
                break
        assert best is not None
        dx, dy = best[1]
        placed.append(annotate(x, y, text, dx, dy, leader=abs(dy) > 12 or abs(dx) > 12)[1])


def regret_curves(
    results: Sequence[MethodResult], gt: GroundTruth, signal: BenchmarkSignal, ks: Sequence[int] = REGRET_KS
):
    """Mean Regret@k over targets for the main methods, random as a band, the noise ceiling dotted."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ks = list(ks)
    # Colour says the family; marker and line style tell apart two methods of one family (ESM-LogME
    # and its SGD variant would otherwise be two identical blue lines).
    styles = [("o", "-"), ("s", "--"), ("^", "-."), ("D", (0, (1, 1)))]
    for (marker, line), r in zip(itertools.cycle(styles), main_methods(results, signal)):
        means = []
        for k in ks:
            values = [regret_at_k(r.scores[t], gt.truth(t), gt.baseline(t), k, target=t) for t in r.scores]
            finite = [v for v in values if math.isfinite(v)]
            means.append(np.mean(finite) if finite else np.nan)
        colour = FAMILY_COLOURS.get(method_family(r.method))
        ax.plot(ks, means, marker=marker, linestyle=line, label=r.method, color=colour)
    random_mean = [signal.random.get(f"regret@{k}", np.nan) for k in ks]
    bands = [signal.random_range.get(f"regret@{k}", (np.nan, np.nan)) for k in ks]
    ax.plot(ks, random_mean, color="gray", linestyle="--", label="random ranking (95 % range)")
    ax.fill_between(ks, [b[0] for b in bands], [b[1] for b in bands], color="gray", alpha=0.2)
    ceiling = signal.ceiling_summary()
    if ceiling:
        values = [ceiling.get(f"regret@{k}", {}).get("mean", np.nan) for k in ks]
        ax.plot(ks, values, color="black", linestyle=":", label="noise ceiling (half the seeds)")
    ax.set_xlabel("k (sources tried, best first)")
    ax.set_ylabel("mean Regret@k over targets (%)")
    ax.set_xticks(ks)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def _catalog_groups(names: Sequence[str]) -> dict[str, str]:
    """name -> family from the catalog's ``family`` field when it has one (empty otherwise)."""
    try:
        from taskscout.data import catalog

        entries = {e.name: e for e in catalog.list_tasks()}
    except Exception:  # the report must not depend on the catalog being importable or complete
        return {}
    groups = {n: getattr(entries.get(n), "family", None) for n in names}
    return {n: str(g) for n, g in groups.items() if g}


def gain_heatmap(gt: GroundTruth, signal: BenchmarkSignal | None = None):
    """Transfer gain (points over no transfer) per source and target; sources (and targets) grouped by
    catalog family when the catalog has one. ``*``: beats the baseline after FDR correction over the
    target's sources; ``•``: p < 0.05 uncorrected (the paired test over seeds of
    :func:`~taskscout.evaluate.signal.paired_gain_tests`)."""
    plt = _pyplot()
    targets, sources = gt.complete_targets(), gt.sources
    groups = _catalog_groups([*targets, *sources])
    sources = sorted(sources, key=lambda s: (groups.get(s, ""), s))
    targets = sorted(targets, key=lambda t: (groups.get(t, ""), t))
    gains = np.full((len(sources), len(targets)), np.nan)
    for j, t in enumerate(targets):
        truth, base = gt.truth(t), gt.baseline(t)
        for i, s in enumerate(sources):
            if s in truth and s != t:
                gains[i, j] = 100 * (truth[s] - base)
    fig, ax = plt.subplots(figsize=(2.5 + 0.75 * len(targets), 1.2 + 0.28 * len(sources)))
    limit = np.nanmax(np.abs(gains)) if np.isfinite(gains).any() else 1.0
    cmap = plt.get_cmap("RdBu").with_extremes(bad="lightgrey")  # grey: pairs not run, or duplicates
    image = ax.imshow(np.ma.masked_invalid(gains), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    label = (lambda n: f"{n} [{groups[n]}]" if n in groups else n) if groups else (lambda n: n)
    ax.set_xticks(range(len(targets)), [label(t) for t in targets], rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(sources)), [label(s) for s in sources], fontsize=8)
    if signal is not None:
        for j, t in enumerate(targets):
            tests = signal.gains.get(t)
            if tests is None or tests.empty:
                continue
            tests = tests.set_index("source")
            for i, s in enumerate(sources):
                if s in tests.index:
                    mark = "*" if tests.loc[s, "significant"] else ("•" if tests.loc[s, "p"] < ALPHA else "")
                    if mark:
                        ax.text(j, i, mark, ha="center", va="center", fontsize=11, fontweight="bold")
    fig.colorbar(image, ax=ax, label="gain over no transfer (points)", shrink=0.6)
    ax.set_title("Transfer gains (grey: not run; * FDR 5 %, • p < 0.05 uncorrected)", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------------
# Headline and pages
# --------------------------------------------------------------------------------------------------


def _ceiling_text(signal: BenchmarkSignal) -> str:
    ceiling = signal.ceiling_summary().get(PRIMARY, {}).get("mean", float("nan"))
    return f"{ceiling:.1f}" if math.isfinite(ceiling) else "unknown (no per-seed runs)"


def _common_targets(a: MethodResult, b: MethodResult) -> list[str]:
    return sorted(set(a.per_target["target"]) & set(b.per_target["target"]))


def paired_p_value(better: MethodResult, worse: MethodResult, metric: str = PRIMARY) -> float:
    """One-sided paired p-value that ``better`` outranks ``worse`` on the targets both rank
    (:func:`~taskscout.evaluate.signal.paired_method_p_value`)."""
    common = _common_targets(better, worse)
    a = better.per_target.set_index("target").loc[common, metric]
    b = worse.per_target.set_index("target").loc[common, metric]
    return paired_method_p_value(a.to_numpy(), b.to_numpy(), metric)


def _comparisons(n: int) -> str:
    return "1 comparison" if n == 1 else f"{n} comparisons"


def _mean(r: MethodResult) -> float:
    return r.summary.get(PRIMARY, {}).get("mean", float("nan"))


@dataclass
class Recommendation:
    """The method the report recommends and the evidence the headline cites.

    Attributes:
        pick: the recommended method.
        best: the best method that beats random (by the primary metric).
        winners: every method that beats random after the correction, best first.
        paired: method -> one-sided paired p-value that ``best`` outranks it (winners but ``best``).
        affordable: the candidates whose P2 cost counts as negligible.
    """

    pick: MethodResult
    best: MethodResult
    winners: list[MethodResult]
    paired: dict[str, float]
    affordable: list[MethodResult]


def recommend(results: Sequence[MethodResult], signal: BenchmarkSignal) -> Recommendation | None:
    """Quality per cost among the methods that beat random (``None`` when none does): of those the best
    one does not beat measurably on the targets both rank (a paired test: overlapping CIs over targets
    would hide that hard targets are hard for every method), the best of the negligibly cheap ones,
    else the cheapest."""
    winners = [r for r in sort_by_quality(results) if signal.significant(r.method)]
    if not winners:
        return None
    best = winners[0]
    paired = {r.method: paired_p_value(best, r) for r in winners if r is not best}
    good = [best, *(r for r in winners if paired.get(r.method, 0.0) >= ALPHA)]
    affordable = [r for r in good if r.p2_ms_per_source <= NEGLIGIBLE_MS_PER_SOURCE]
    if affordable:
        pick = max(affordable, key=lambda r: (_mean(r), -r.p2_ms_per_source))
    else:
        pick = min(good, key=lambda r: (r.p2_ms_per_source, -_mean(r)))
    return Recommendation(pick, best, winners, paired, affordable)


def headline(results: Sequence[MethodResult], gt: GroundTruth, signal: BenchmarkSignal) -> list[str]:
    """Two sentences computed from the results (the recommendation and why), then the reliability one."""
    ordered = sort_by_quality(results)
    label = METRIC_LABELS[PRIMARY]
    random = signal.random.get(PRIMARY, float("nan"))
    recommendation = recommend(results, signal)
    sentences = []
    mean_of = _mean

    if recommendation is not None:
        pick, best, winners = recommendation.pick, recommendation.best, recommendation.winners
        paired, affordable = recommendation.paired, recommendation.affordable
        cost = format_duration_ms(pick.p2_ms_per_source)
        if pick is best:
            cheaper = [r for r in winners if r.p2_ms_per_source < best.p2_ms_per_source]
            if len(winners) == 1:
                why = f"{label} {mean_of(best):.1f}, {cost} per source."
            elif cheaper:
                which = (
                    f"the cheaper one ({cheaper[0].method}) ranks"
                    if len(cheaper) == 1
                    else f"each of the {len(cheaper)} cheaper ones ranks"
                )
                why = (
                    f"it has the best {label} ({mean_of(best):.1f}) and {which} measurably worse on the same "
                    f"targets (paired sign-flip test, p < {ALPHA}); {cost} per source."
                )
            else:
                why = (
                    f"it has the best {label} ({mean_of(best):.1f}) and none of them is cheaper; "
                    f"{cost} per source."
                )
        else:
            common = len(_common_targets(best, pick))
            p_pick = format_p(paired[pick.method])
            versus = f"paired sign-flip test over the {common} targets both rank p = {p_pick}"
            if pick in affordable:
                minutes = 1000 * NEGLIGIBLE_MS_PER_SOURCE / 60_000
                wait = "a minute" if minutes == 1 else f"{minutes:g} minutes"
                why = (
                    f"it is the best of those that rank 1,000 sources in under {wait} ({label} "
                    f"{mean_of(pick):.1f}, {cost} per source), and the best one overall, {best.method} "
                    f"({mean_of(best):.1f}, {format_duration_ms(best.p2_ms_per_source)} per source), does "
                    f"not rank measurably better ({versus})."
                )
            else:
                why = (
                    f"it is the cheapest ({cost} per source) that the best one ({best.method}, "
                    f"{mean_of(best):.1f}) does not beat measurably: {label} {mean_of(pick):.1f}, {versus}."
                )
        corrected = f"after correcting for {_comparisons(len(results))}"
        sentences.append(
            f"Use **{pick.method}**: of the {len(winners)} methods that rank sources better than random "
            f"{corrected}, {why}"
            if len(winners) > 1
            else f"Use **{pick.method}**: it is the only method that ranks sources better than random "
            f"{corrected}: {why}"
        )
        sentences.append(
            f"A random ranking of the same sources scores {label} {random:.1f} (p of {pick.method} "
            f"against it: {format_p(signal.p_values[pick.method][PRIMARY])}); the noise ceiling is "
            f"{_ceiling_text(signal)}."
        )
    else:
        top = ordered[0] if ordered else None
        raw = [r for r in ordered if signal.p_values.get(r.method, {}).get(PRIMARY, 1.0) < ALPHA]
        sentences.append(
            "No method ranks sources better than random on this ground truth once "
            f"{_comparisons(len(results))} are accounted for, so none is recommended: a random ranking "
            f"scores {label} {random:.1f} and the best method, {top.method if top else '–'}, "
            f"{mean_of(top):.1f} (p = {format_p(signal.p_values.get(top.method, {}).get(PRIMARY, np.nan))}"
            f" uncorrected; {len(raw)} of {len(results)} methods have p < {ALPHA} before correction, "
            f"about {ALPHA * len(results):.1f} would by chance)."
            if top
            else "No method was evaluated."
        )
        ceiling = signal.ceiling_summary().get(PRIMARY, {}).get("mean", float("nan"))
        sentences.append(
            f"The data cannot separate methods well: ranking by half of the seeds scores {ceiling:.1f} "
            f"against the other half (the noise ceiling), so what any method can show here is small."
            if math.isfinite(ceiling)
            else "Without per-seed runs the noise ceiling is unknown."
        )
    reliable = [(t, v) for t, v in signal.reliability.items() if math.isfinite(v)]
    if reliable:
        lo = min(reliable, key=lambda tv: tv[1])
        hi = max(reliable, key=lambda tv: tv[1])
        n_seeds = int(gt.runs["seed"].nunique()) if gt.runs is not None else 0
        sentences.append(
            f"Ground truth `{gt.protocol.get('name', '?')}`: split-half reliability of the source ordering "
            f"{signal.mean_reliability:.2f} on average over {len(reliable)} targets ({lo[1]:.2f} on {lo[0]} "
            f"to {hi[1]:.2f} on {hi[0]}; 1 = the {n_seeds}-seed means would not change with more seeds, "
            "0 = they are seed noise)."
        )
    return sentences


def verdict(results: Sequence[MethodResult], signal: BenchmarkSignal) -> list[str]:
    """Every method sorted into "better than random" (after the FDR correction) and "not measurably
    better", best first, with its mean and uncorrected p: the list a reader checks first."""
    label = METRIC_LABELS[PRIMARY]

    def item(r: MethodResult) -> str:
        mean = r.summary.get(PRIMARY, {}).get("mean", float("nan"))
        p = p_phrase(signal.p_values.get(r.method, {}).get(PRIMARY, np.nan))
        return f"`{r.method}` ({mean:.1f}, {p})"  # code: a name never wraps at its hyphens

    ordered = sort_by_quality(results)
    better = [item(r) for r in ordered if signal.significant(r.method)]
    other = [item(r) for r in ordered if not signal.significant(r.method)]
    random = signal.random.get(PRIMARY, float("nan"))
    lines = [
        f"**Better than random** ({label} {random:.1f}) after correction for {_comparisons(len(results))}: "
        + (", ".join(better) if better else "none")
        + "."
    ]
    if other:
        lines.append("**Not measurably better than random**: " + ", ".join(other) + ".")
    return lines


def _markdown_inline(text: str):
    """``**bold**`` and ```code``` of a headline sentence as HTML (everything else escaped)."""
    import re

    import markupsafe

    escaped = str(markupsafe.escape(text))
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
    return markupsafe.Markup(escaped)


def _breakable(text: str):
    """A method or task name that may wrap only between its parts (after ``:``, ``+`` and ``_`` before a
    letter, so a gain like "(+1.0)" stays whole), never
    inside a hyphenated name, so a fusion of four methods or a column of long source names does not
    widen a table past the page."""
    import re

    import markupsafe

    parts = [p for p in re.split(r"(?<=[:+_])(?=[A-Za-z])", str(text)) if p]
    return markupsafe.Markup("<wbr>").join(
        markupsafe.Markup('<span class="part">{}</span>').format(p) for p in parts
    )


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("taskscout.evaluate", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["markdown_inline"] = _markdown_inline
    env.filters["breakable"] = _breakable
    return env


def _seeds_per_pair(runs: pd.DataFrame) -> str:
    """How many seeds each (source, target) pair has: ``"3"``, or ``"1-3"`` while runs are missing."""
    counts = runs.groupby(["source", "target"], dropna=False)["seed"].nunique()
    low, high = int(counts.min()), int(counts.max())
    return str(high) if low == high else f"{low}-{high}"


def benchmark_quality(
    results: Sequence[MethodResult], gt: GroundTruth, signal: BenchmarkSignal
) -> BenchmarkQuality:
    """The machine-readable summary of the results (``summary.json``; what ``taskscout rank`` and
    ``taskscout methods`` show of a method when it is the packaged reference benchmark)."""
    methods = {}
    for r in results:
        s = r.summary.get(PRIMARY, {})
        methods[r.method] = MethodQuality(
            method=r.method,
            mean=float(s.get("mean", np.nan)),
            ci_low=float(s.get("ci_low", np.nan)),
            ci_high=float(s.get("ci_high", np.nan)),
            p=float(signal.p_values.get(r.method, {}).get(PRIMARY, np.nan)),
            significant=signal.significant(r.method),
            targets=int(r.per_target[PRIMARY].notna().sum()) if len(r.per_target) else 0,
        )
    return BenchmarkQuality(
        protocol=str(gt.protocol.get("name", "?")),
        metric=METRIC_LABELS[PRIMARY],
        n_targets=len(gt.complete_targets()),
        n_sources=len(gt.sources),
        random=float(signal.random.get(PRIMARY, np.nan)),
        noise_ceiling=float(signal.ceiling_summary().get(PRIMARY, {}).get("mean", np.nan)),
        mean_reliability=float(signal.mean_reliability),
        methods=methods,
    )


def cost_note(results: Sequence[MethodResult]) -> str:
    """What the P2 time column includes, naming the methods whose time has another's reused work added
    (:func:`~taskscout.evaluate.benchmark.with_reused_costs`)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for r in results:
        if r.p2_reused:
            groups.setdefault(r.p2_reused, []).append(r.method)
    note = (
        "P2 time / source: what ranking costs per source with the method on its own (a fusion: the sum of "
        "its members)"
    )
    if not groups:
        return note + "."
    added = "; ".join(
        f"{', '.join(f'`{m}`' for m in methods)} + {', '.join(f'`{m}`' for m in reused)}"
        for reused, methods in groups.items()
    )
    return (
        f"{note}, so a method that reuses another's cached work (the target embedded by each source model, "
        f"a target tuning) has that method's time added: {added}."
    )


def _summary_context(
    results: Sequence[MethodResult], gt: GroundTruth, signal: BenchmarkSignal, main: pd.DataFrame
) -> dict[str, object]:
    """What ``_summary.md.j2`` and ``_table_notes.md.j2`` need: shared by the report and the README
    block, so both say the same things in the same words."""
    ceiling_random = _summaries(signal.ceiling_random).get(PRIMARY, {}).get("mean", float("nan"))
    return {
        "protocol": gt.protocol.get("name", "?"),
        "n_targets": len(gt.complete_targets()),
        "n_sources": len(gt.sources),
        "n_runs": len(gt.runs) if gt.runs is not None else gt.meta.get("runs", "?"),
        "n_seeds": _seeds_per_pair(gt.runs) if gt.runs is not None else None,
        "n_methods": len(results),
        "n_permutations": signal.n_permutations,
        "headline": headline(results, gt, signal),
        "verdict": verdict(results, signal),
        "primary": METRIC_LABELS[PRIMARY],
        "ceiling_random": f"{ceiling_random:.1f}" if math.isfinite(ceiling_random) else "–",
        "main_markdown": markdown_frame(main, TABLE_HEADER),
        "cost_note": cost_note(results),
    }


def write_report(
    results: Sequence[MethodResult],
    gt: GroundTruth,
    out_dir: str | Path,
    *,
    signal: BenchmarkSignal | None = None,
    n_permutations: int = 2000,
) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``summary.json`` (:func:`benchmark_quality`) into
    ``out_dir``; returns the first two paths."""
    out_dir = Path(out_dir)
    results = sort_by_quality(with_reused_costs(results))
    signal = signal or compute_signal(results, gt, n_permutations=n_permutations)
    main = results_table(results, signal)
    per_target = per_target_table(results, gt, signal)
    wins = wins_table(results) if results else pd.DataFrame()
    context = {
        **_summary_context(results, gt, signal, main),
        "main_header": [TABLE_HEADER[c] for c in main.columns],
        "main_rows": main.to_dict(orient="split")["data"],
        "reference_rows": int(main["method"].isin(REFERENCE_ROWS).sum()),
        "per_target_header": list(per_target.columns),
        "per_target_rows": per_target.to_dict(orient="split")["data"],
        "per_target_markdown": markdown_frame(per_target),
        "transfer_summary": transfer_summary(signal),
        "main_methods": [r.method for r in main_methods(results, signal)],
        "wins_header": list(wins.columns),
        "wins_rows": wins.to_dict(orient="split")["data"],
        "wins_markdown": markdown_frame(wins),
    }
    env = _environment()
    md_path = out_dir / "report.md"
    write_bytes(md_path, env.get_template("report.md.j2").render(**context).encode("utf-8"))
    figures = [
        ("Quality against cost", "tradeoff", _png(tradeoff_figure(results, signal))),
        ("Regret@k", "regret", _png(regret_curves(results, gt, signal))),
        ("Transfer gains", "gains", _png(gain_heatmap(gt, signal))),
    ]
    page = env.get_template("report.html.j2").render(**context, figures=figures)
    html_path = out_dir / "report.html"
    write_bytes(html_path, page.encode("utf-8"))
    write_json(out_dir / "summary.json", benchmark_quality(results, gt, signal).to_dict())
    return md_path, html_path


# The part of a README that `taskscout bench --readme` owns: everything between these two lines.
README_START = (
    "<!-- taskscout bench --readme: generated from here to the end marker; edits are overwritten -->"
)
README_END = "<!-- end of taskscout bench --readme -->"


def readme_block(path: str | Path) -> tuple[str, int, int]:
    """A README's text and the span of its generated block (markers included); a clear error if it
    cannot be read or has no block. ``bench --readme`` checks this before any work."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskscoutError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    start = text.find(README_START)
    end = text.find(README_END, start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        raise TaskscoutError(
            f"{path} has no generated-results block: put the lines {README_START!r} and "
            f"{README_END!r} where the results table goes"
        )
    return text, start, end + len(README_END)


def update_readme(
    path: str | Path,
    results: Sequence[MethodResult],
    gt: GroundTruth,
    signal: BenchmarkSignal,
) -> None:
    """Replace the generated block of a README (between README_START and README_END) with the headline,
    the verdict, the main results table and its notes (the report's own words, from the same
    templates), so the README's numbers always come from the stored rankings."""
    text, start, end = readme_block(path)
    results = sort_by_quality(with_reused_costs(results))
    context = _summary_context(results, gt, signal, results_table(results, signal))
    generated = _environment().get_template("readme_block.md.j2").render(**context).strip()
    block = f"{README_START}\n\n{generated}\n\n{README_END}"
    write_bytes(path, (text[:start] + block + text[end:]).encode("utf-8"))
