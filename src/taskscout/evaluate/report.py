"""Benchmark reports: a Markdown table and a self-contained HTML page with plots.

Plots: Regret@k curves per method, a heat map of transfer gains (source x target, over the baseline),
and P2 time and storage per source for each method. Images are embedded as base64 PNG so the HTML file
is one file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from taskscout.evaluate.benchmark import MethodResult
from taskscout.evaluate.groundtruth import GroundTruth
from taskscout.evaluate.metrics import regret_at_k
from taskscout.io import write_bytes

TABLE_METRICS = ("ndcg", "ndcg_vu", "regret@1", "regret@3", "regret@5", "rho", "spearman")


def results_table(results: list[MethodResult]) -> pd.DataFrame:
    """One row per method: mean (95% bootstrap CI) of each metric over targets, P2 cost and storage."""
    rows = []
    for r in results:
        row: dict[str, object] = {"method": r.method}
        for metric in TABLE_METRICS:
            s = r.summary.get(metric, {})
            row[metric] = s.get("mean", float("nan"))
            row[f"{metric}_ci"] = (s.get("ci_low", float("nan")), s.get("ci_high", float("nan")))
        row["p2_ms_per_source"] = r.p2_ms_per_source
        row["storage_kb_per_source"] = r.storage_bytes_per_source / 1024
        # Targets the method could rank (LEEP, NCE and H-score skip regression targets).
        row["targets"] = int(r.per_target["regret@1"].notna().sum()) if len(r.per_target) else 0
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(results: list[MethodResult]) -> str:
    table = results_table(results)
    header = [
        "method",
        "NDCG (Schulte)",
        "NDCG (gain)",
        "Regret@1",
        "Regret@3",
        "Regret@5",
        "rho",
        "Spearman",
        "P2 ms/source",
        "KB/source",
        "targets",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [str(row["method"])]
        for metric in TABLE_METRICS:
            low, high = row[f"{metric}_ci"]
            cells.append(
                f"{row[metric]:.2f} [{low:.2f}, {high:.2f}]" if np.isfinite(low) else f"{row[metric]:.2f}"
            )
        cells += [
            f"{row['p2_ms_per_source']:.1f}",
            f"{row['storage_kb_per_source']:.0f}",
            str(row["targets"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def frame_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (pandas' own needs the optional `tabulate` package)."""

    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def regret_curves(results: list[MethodResult], gt: GroundTruth, ks: range = range(1, 11)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        means = []
        for k in ks:
            values = [regret_at_k(r.scores[t], gt.truth(t), gt.baseline(t), k, target=t) for t in r.scores]
            means.append(np.nanmean(values) if values else np.nan)
        ax.plot(list(ks), means, marker="o", label=r.method)
    ax.set_xlabel("k (sources tried)")
    ax.set_ylabel("mean Regret@k (%)")
    ax.set_title("Regret@k: how much worse than the best source")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def gain_heatmap(gt: GroundTruth):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets, sources = gt.complete_targets(), gt.sources
    gains = np.full((len(sources), len(targets)), np.nan)
    for j, t in enumerate(targets):
        truth, base = gt.truth(t), gt.baseline(t)
        for i, s in enumerate(sources):
            if s in truth:
                gains[i, j] = 100 * (truth[s] - base)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(targets), 1.0 + 0.3 * len(sources)))
    limit = np.nanmax(np.abs(gains)) if np.isfinite(gains).any() else 1.0
    cmap = plt.get_cmap("RdBu").with_extremes(bad="lightgrey")  # grey: pairs not run, or duplicates
    image = ax.imshow(np.ma.masked_invalid(gains), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(targets)), targets, rotation=60, ha="right")
    ax.set_yticks(range(len(sources)), sources)
    fig.colorbar(image, ax=ax, label="gain over no transfer (points)")
    ax.set_title("Transfer gains (grey = not run / duplicate)")
    return fig


def cost_plot(results: list[MethodResult]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    names = [r.method for r in results]
    left.bar(names, [r.p2_ms_per_source for r in results], color="tab:blue")
    left.set_ylabel("ms per source (P2)")
    right.bar(names, [r.storage_bytes_per_source / 1024 for r in results], color="tab:orange")
    right.set_ylabel("KB per source (pool)")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=45)
    return fig


def wins_table(results: list[MethodResult], metric: str = "regret@3") -> pd.DataFrame:
    """Target x method values of one metric, plus which method is best on each target (ties listed)."""
    lower_is_better = metric.startswith("regret") or metric == "rho"
    frame = pd.DataFrame({r.method: r.per_target.set_index("target")[metric] for r in results})
    best_value = frame.min(axis=1) if lower_is_better else frame.max(axis=1)
    best = frame.apply(
        lambda row: ", ".join(m for m in frame.columns if np.isclose(row[m], best_value[row.name])), axis=1
    )
    out = frame.round(2)
    out["best"] = best
    return out.reset_index(names="target")


def write_report(results: list[MethodResult], gt: GroundTruth, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    table = markdown_table(results)
    per_target = "\n\n".join(f"### {r.method}\n\n" + frame_markdown(r.per_target) for r in results)
    protocol = gt.protocol.get("name", "?")
    intro = (
        f"Ground truth: protocol `{protocol}`, {len(gt.complete_targets())} targets, "
        f"{len(gt.sources)} sources. Metrics: mean over targets [95% bootstrap CI]. "
        "NDCG (Schulte) uses gain 2^(100 P) - 1 over the whole "
        "ranking; NDCG (gain) uses relevance = points gained over no transfer; Regret@k is relative (%) and "
        "counts the no-transfer baseline in the best; rho = rank of the truly best source."
    )
    wins = wins_table(results)
    wins_intro = "Regret@3 (relative %, lower is better) of each method on each target, and the best."
    markdown = (
        f"# taskscout benchmark\n\n{intro}\n\n{table}\n\n## Which method wins where\n\n{wins_intro}\n\n"
        f"{frame_markdown(wins)}\n\n## Per target\n\n{per_target}\n"
    )
    md_path = out_dir / "report.md"
    write_bytes(md_path, markdown.encode("utf-8"))
    images = [
        ("Regret@k", _png(regret_curves(results, gt))),
        ("Transfer gains", _png(gain_heatmap(gt))),
        ("P2 cost and storage", _png(cost_plot(results))),
    ]
    html_table = (
        results_table(results).drop(columns=[f"{m}_ci" for m in TABLE_METRICS]).round(3).to_html(index=False)
    )
    body = "".join(
        f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{data}'/>" for title, data in images
    )
    per_target_html = "".join(
        f"<h3>{html.escape(r.method)}</h3>{r.per_target.round(3).to_html(index=False)}" for r in results
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>taskscout benchmark</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>taskscout benchmark</h1><p>{html.escape(intro)}</p>{html_table}"
        f"<h2>Which method wins where</h2><p>{html.escape(wins_intro)}</p>{wins.to_html(index=False)}{body}"
        f"<h2>Per target</h2>{per_target_html}</body></html>"
    )
    html_path = out_dir / "report.html"
    write_bytes(html_path, page.encode("utf-8"))
    return md_path, html_path
