"""The benchmark report: signal rows, rounding, headline, pages; and the real-browser check."""

import functools
import html
import importlib.util
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskscout.evaluate.benchmark import MethodResult, with_reused_costs
from taskscout.evaluate.groundtruth import GroundTruth
from taskscout.evaluate.metrics import aggregate, evaluate_ranking
from taskscout.evaluate.report import (
    README_END,
    README_START,
    compute_signal,
    cost_note,
    decimals_for,
    format_bytes,
    format_ci,
    format_duration_ms,
    headline,
    main_methods,
    markdown_table,
    recommend,
    results_table,
    transfer_summary,
    update_readme,
    verdict,
    write_report,
)

ROOT = Path(__file__).resolve().parent.parent


def synthetic_ground_truth(n_targets=6, n_sources=12, seeds=(0, 1, 2), noise=0.002, seed=0) -> GroundTruth:
    """Targets whose sources have clear true effects (sources s0.. get better with the index)."""
    rng = np.random.default_rng(seed)
    runs = []
    for j in range(n_targets):
        target = f"t{j}"
        effects = {f"s{i:02d}": 0.6 + 0.01 * i + rng.normal(0, 0.003) for i in range(n_sources)}
        effects[""] = 0.62
        for source, effect in effects.items():
            for sd in seeds:
                runs.append(
                    {"source": source, "target": target, "seed": sd, "main": effect + rng.normal(0, noise)}
                )
    runs = pd.DataFrame(runs)
    records = runs.groupby(["source", "target"])["main"].agg(["mean", "std", "count"]).reset_index()
    records = records.rename(columns={"count": "n"})
    return GroundTruth(protocol={"name": "synthetic"}, records=records, meta={}, runs=runs)


def method_result(name: str, gt: GroundTruth, score_of, ms: float = 1.0) -> MethodResult:
    rows, scores = [], {}
    for t in gt.complete_targets():
        scores[t] = {s: float(score_of(s, t)) for s in gt.truth(t)}
        rows.append({"target": t, **evaluate_ranking(scores[t], gt.truth(t), gt.baseline(t), target=t)})
    frame = pd.DataFrame(rows)
    summary = aggregate({r["target"]: {k: v for k, v in r.items() if k != "target"} for r in rows})
    return MethodResult(name, frame, summary, ms, 2048.0, scores)


@pytest.fixture(scope="module")
def bench():
    gt = synthetic_ground_truth()
    truth_order = method_result("oracle", gt, lambda s, t: int(s[1:]), ms=50.0)
    cheap = method_result("cheap-good", gt, lambda s, t: int(s[1:]), ms=0.5)  # as good, 100x cheaper
    rng = np.random.default_rng(5)
    noise = method_result("noise", gt, lambda s, t: rng.random(), ms=0.1)
    reverse = method_result("reverse", gt, lambda s, t: -int(s[1:]), ms=0.1)
    results = [noise, truth_order, reverse, cheap]
    return gt, results, compute_signal(results, gt, n_permutations=500)


def test_formatting_follows_the_confidence_interval():
    assert decimals_for(6.1) == 0 and decimals_for(1.3) == 1 and decimals_for(0.45) == 1
    assert decimals_for(0.12) == 2 and decimals_for(0.04) == 2 and decimals_for(float("nan")) == 2
    assert format_ci(76.88, 6.1, 0) == "77 ±6" and format_ci(2.61, 1.3, 1) == "2.6 ±1.3"
    assert format_ci(float("nan"), 1.0, 1) == "–" and format_ci(3.14159, float("nan"), 2) == "3.14"
    assert format_duration_ms(0.0) == "<0.1 ms" and format_duration_ms(8.5) == "8.5 ms"
    assert format_duration_ms(234.2) == "234 ms" and format_duration_ms(8444.4) == "8.4 s"
    assert format_duration_ms(150_000) == "2.5 min" and format_duration_ms(float("nan")) == "–"
    assert (
        format_bytes(0) == "0 B" and format_bytes(75_000) == "73 KB" and format_bytes(1.3 * 2**20) == "1.3 MB"
    )


def test_signal_tells_good_rankings_from_random(bench):
    _gt, _results, signal = bench
    p = {m: v["ndcg"] for m, v in signal.p_values.items()}
    assert p["oracle"] < 0.01 and p["cheap-good"] < 0.01 and p["reverse"] > 0.99
    assert signal.significant("oracle") and not signal.significant("reverse")
    assert signal.mean_reliability > 0.9  # true effects far above the seed noise
    ceiling = signal.ceiling_summary()
    assert ceiling["spearman"]["mean"] > 0.8 and ceiling["ndcg"]["mean"] > signal.random["ndcg"]
    assert signal.random["spearman"] == 0.0
    low, high = signal.random_range["ndcg"]
    assert low < signal.random["ndcg"] < high
    # Paired tests: the best sources beat the baseline (0.62) on every target, the worst do not.
    for tests in signal.gains.values():
        tests = tests.set_index("source")
        assert tests.loc["s11", "significant"] and not tests.loc["s00", "significant"]


def test_random_rankings_of_different_targets_are_independent():
    # Every target has the same sources in the same true order. Were the i-th random ranking the same
    # order on every target, the mean over targets would vary as much as one target's value and the
    # p-values of good methods would be far too large.
    gt = synthetic_ground_truth(n_targets=8)
    signal = compute_signal([], gt, n_permutations=2000)
    stack = np.vstack([signal.random_null[t]["ndcg"] for t in gt.complete_targets()])
    ratio = stack.mean(axis=0).std() / stack.std(axis=1).mean()
    assert 0.25 < ratio < 0.5  # independent targets: 1 / sqrt(8) = 0.35
    # A ranking that only swaps the two best sources is far above random on all 8 targets.
    swapped = method_result("swap-top-two", gt, lambda s, t: {"s10": 11, "s11": 10}.get(s, int(s[1:])))
    assert compute_signal([swapped], gt, n_permutations=2000).p_values["swap-top-two"]["ndcg"] < 0.01


def test_results_table_has_random_and_ceiling_rows_and_sorts_by_quality(bench):
    _gt, results, signal = bench
    table = results_table(results, signal)
    assert list(table["method"][:2]) == ["cheap-good", "oracle"] and table["method"].iloc[3] == "reverse"
    assert list(table["method"][-2:]) == ["random ranking (expected)", "noise ceiling (half the seeds)"]
    assert table["p"].iloc[0].endswith("*") and not table["p"].iloc[3].endswith("*")
    assert table["p2"].iloc[1] == "50 ms" and table["storage"].iloc[1] == "2 KB"
    assert all("±" in cell for cell in table["ndcg"][:-2])
    # Each cell rounded to its own interval (at most 2 decimals): the noise ceiling's near-zero-width
    # interval does not give a method whose CI is points wide four decimals.
    by_method = table.set_index("method")
    noise = next(r for r in results if r.method == "noise").summary["ndcg"]
    half = (noise["ci_high"] - noise["ci_low"]) / 2
    assert 1 < half < 10 and re.fullmatch(r"\d+ ±\d+", by_method.loc["noise", "ndcg"])
    assert by_method.loc["oracle", "ndcg"] == "100.00 ±0.00"
    markdown = markdown_table(results, signal)
    assert "random ranking (expected)" in markdown and markdown.count("\n") == len(table) + 1
    # Without the signal the table is still valid (no reference rows).
    assert len(results_table(results)) == len(results)


def test_headline_recommends_the_cheapest_significant_method_or_says_none(bench):
    gt, results, signal = bench
    text = " ".join(headline(results, gt, signal))
    # cheap-good is as good as the oracle (sorted first by name on the tie) at 1 % of its cost.
    assert text.startswith("Use **cheap-good**") and "reliability" in text
    assert "it has the best NDCG (100.0) and none of them is cheaper" in text
    # A still cheaper method that beats random but ranks worse than the best on every target is not
    # recommended, however much the confidence intervals over targets overlap: the best method is.
    swapped = method_result(
        "cheap-worse", gt, lambda s, t: int(s[1:]) if s < "s10" else 21 - int(s[1:]), ms=0.01
    )
    best_pair = [r for r in results if r.method == "oracle"] + [swapped]
    both = compute_signal(best_pair, gt, n_permutations=200)
    assert both.significant("cheap-worse") and both.significant("oracle")
    text = " ".join(headline(best_pair, gt, both))
    assert (
        text.startswith("Use **oracle**: ") and "the cheaper one (cheap-worse) ranks measurably worse" in text
    )
    alone = [r for r in results if r.method in ("oracle", "noise", "reverse")]
    text = " ".join(headline(alone, gt, compute_signal(alone, gt, n_permutations=200)))
    assert text.startswith("Use **oracle**: it is the only method that ranks sources better than random")
    noise_only = [r for r in results if r.method in ("noise", "reverse")]
    plain = compute_signal(noise_only, gt, n_permutations=200)
    text = " ".join(headline(noise_only, gt, plain))
    assert text.startswith("No method ranks sources better than random")


def test_headline_treats_negligible_costs_as_equal_and_otherwise_takes_the_cheapest(bench):
    gt = bench[0]

    def swapped_on(targets):  # the two best sources swapped on these targets: slightly worse
        return lambda s, t: {"s10": 11, "s11": 10}.get(s, int(s[1:])) if t in targets else int(s[1:])

    def pick(near_ms: float, cheapest_ms: float) -> str:
        results = [
            method_result("slow-best", gt, lambda s, t: int(s[1:]), ms=500.0),
            method_result("near", gt, swapped_on({"t0"}), ms=near_ms),
            method_result("cheapest", gt, swapped_on({"t0", "t1"}), ms=cheapest_ms),
        ]
        signal = compute_signal(results, gt, n_permutations=300)
        assert all(signal.significant(r.method) for r in results)
        text = " ".join(headline(results, gt, signal))
        # The figures and the per-target picks follow the best and the recommended method.
        chosen = recommend(results, signal).pick.method
        assert [r.method for r in main_methods(results, signal)] == ["slow-best", chosen]
        assert text.startswith(f"Use **{chosen}**: ")
        return text

    # Both cheap ones cost nothing that matters (1,000 sources in under a minute) and the best does not
    # beat either measurably on 6 targets: the better of the two is recommended, not the cheaper.
    text = pick(near_ms=5.0, cheapest_ms=0.1)
    assert text.startswith("Use **near**: ") and "rank 1,000 sources in under a minute" in text
    assert "slow-best" in text and "500 ms per source" in text
    # Above that cost, the cheapest method the best does not beat measurably.
    text = pick(near_ms=200.0, cheapest_ms=100.0)
    assert text.startswith("Use **cheapest**: ") and "it is the cheapest (100 ms per source)" in text


def test_a_method_that_reuses_cached_work_is_charged_for_it(bench):
    gt = bench[0]
    measured = {
        "logme-full": 5000.0,  # embeds the target with every source model
        "frozen": 100.0,  # measured after it: the features were cached
        "esm-logme": 8.0,
        "tupate-bitfit": 300.0,
        "tupate-lora": 310.0,
        "tupate-prefix": 320.0,
        "fusion:esm-logme+tupate-ensemble": 9.0,  # esm-logme + the ensemble's cosines
        "curvegrad": 5.0,  # its reused TaskEmb tuning is not among the results
        "no-such-plugin": 1.0,
    }
    results = [method_result(name, gt, lambda s, t: int(s[1:]), ms=ms) for name, ms in measured.items()]
    cost = {r.method: (r.p2_ms_per_source, r.p2_reused) for r in with_reused_costs(results)}
    assert cost["frozen"] == (5100.0, ("logme-full",))
    assert cost["fusion:esm-logme+tupate-ensemble"] == (
        9.0 + 300.0 + 310.0 + 320.0,
        ("tupate-bitfit", "tupate-lora", "tupate-prefix"),
    )
    for unchanged in ("logme-full", "esm-logme", "tupate-lora", "curvegrad", "no-such-plugin"):
        assert cost[unchanged] == (measured[unchanged], ())
    charged = with_reused_costs(results)
    assert [(r.p2_ms_per_source, r.p2_reused) for r in with_reused_costs(charged)] == [
        (r.p2_ms_per_source, r.p2_reused) for r in charged
    ]  # charged once, however often applied
    # The report's entry points charge it themselves: the table shows frozen at 5.1 s, not 100 ms.
    frozen_row = next(line for line in markdown_table(results).splitlines() if line.startswith("| frozen "))
    assert "| 5.1 s |" in frozen_row
    note = cost_note(charged)
    assert "`frozen` + `logme-full`" in note and "`curvegrad`" not in note
    assert cost_note(results).endswith("(a fusion: the sum of its members).")


def test_verdict_sorts_every_method_into_better_than_random_or_not(bench):
    _gt, results, signal = bench
    better, rest = verdict(results, signal)
    assert (
        better.startswith("**Better than random** (NDCG ") and "after correction for 4 comparisons" in better
    )
    # 500 permutations: the smallest p is 1 / 501.
    assert better.endswith(": `cheap-good` (100.0, p = 0.002), `oracle` (100.0, p = 0.002).")
    assert "reverse" in rest and "noise" not in better and "reverse" not in better
    assert rest.index("noise") < rest.index("reverse")  # best first
    worse = [r for r in results if r.method == "reverse"]
    lines = verdict(worse, compute_signal(worse, _gt, n_permutations=100))
    assert lines[0].endswith("1 comparison: none.")
    assert lines[1].startswith("**Not measurably better than random**: `reverse` (")


def test_write_report_pages(tmp_path, bench):
    gt, results, signal = bench
    md, page = write_report(results, gt, tmp_path, signal=signal)
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 3 and "<script" not in html
    assert "noise ceiling" in html and "random ranking (expected)" in html and 'class="scroll"' in html
    text = md.read_text()
    assert text.startswith("# taskscout benchmark\n\nUse **cheap-good**")
    assert "\n\n- **Better than random** (NDCG" in text  # the verdict: a list of its own
    assert "\n\n## Methods against random and against the noise ceiling\n\n| method |" in text
    assert "\n\n## Per target\n\n" in text
    assert "| target | reliability |" in text


def test_update_readme_rewrites_only_its_block(tmp_path, bench):
    from taskscout.errors import TaskscoutError

    gt, results, signal = bench
    readme = tmp_path / "README.md"
    before, after = "# tool\n\n## Results\n\nWhat the columns mean.\n\n", "\n\nHand-written reading.\n"
    readme.write_text(f"{before}{README_START}\nold table\n{README_END}{after}")
    update_readme(readme, results, gt, signal)
    text = readme.read_text()
    assert text.startswith(before + README_START) and text.endswith(README_END + after)
    block = text[len(before) : -len(after)]
    assert (
        "old table" not in block and "Use **cheap-good**" in block and "\n- **Not measurably better" in block
    )
    assert "random ranking (expected)" in block and "noise ceiling (half the seeds)" in block
    assert (
        "protocol `synthetic`, 6 targets x 12 sources, 234 transfer runs (3 seeds per pair and for the "
        "no-transfer baseline)." in block
    )
    assert "the no-transfer baseline).\n\n| method |" in block  # the table is a paragraph of its own
    # The table's notes come with it (the report's words, from the same template).
    assert "Benjamini-Hochberg correction over the 4 methods" in block
    update_readme(readme, results, gt, signal)
    assert readme.read_text() == text  # idempotent
    # No block (or only half of one): one clear error, and the file is left as it was.
    readme.write_text(f"{before}{README_START}\n")
    with pytest.raises(TaskscoutError, match="has no generated-results block"):
        update_readme(readme, results, gt, signal)
    assert readme.read_text() == f"{before}{README_START}\n"
    with pytest.raises(TaskscoutError, match="cannot read"):
        update_readme(tmp_path / "missing.md", results, gt, signal)


def test_report_without_runs_still_renders(tmp_path):
    gt = synthetic_ground_truth(n_targets=2, n_sources=4)
    gt.runs = None
    results = [method_result("m", gt, lambda s, t: int(s[1:]))]
    md, _page = write_report(results, gt, tmp_path, n_permutations=100)
    assert "noise ceiling (half the seeds)" not in md.read_text()
    signal = compute_signal(results, gt, n_permutations=100)
    assert math.isnan(signal.mean_reliability) and signal.gains == {}


# --------------------------------------------------------------------------------------------------
# The browser check (runs when Chromium is installed; .ci/run installs it)
# --------------------------------------------------------------------------------------------------


@functools.cache
def _checker():
    spec = importlib.util.spec_from_file_location("check_report", ROOT / "benchmarks" / "check_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_report"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


needs_chromium = pytest.mark.skipif(_checker().find_chromium() is None, reason="Chromium is not installed")


@needs_chromium
def test_browser_check_passes_the_report_and_takes_screenshots(tmp_path, bench):
    gt, results, signal = bench
    _, page = write_report(results, gt, tmp_path / "report", signal=signal)
    outcome = _checker().check_report(page, tmp_path / "shots")
    assert outcome.problems == []
    assert [p.name for p in outcome.screenshots] == ["report-1280.png", "report-500.png"]
    header = outcome.screenshots[0].read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(header[16:20], "big") == 1280


@needs_chromium
def test_browser_check_catches_overflow_missing_images_and_errors(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><head><title>x</title></head><body>"
        '<table id="wide"><tr><td style="min-width:3000px">wide</td></tr></table>'
        '<div class="scroll" style="overflow-x:auto"><table id="boxed"><tr>'
        '<td style="min-width:3000px">scrolls in its box</td></tr></table></div>'
        '<details open><div class="scroll" style="overflow-x:auto"><table id="folded"><tr>'
        '<td style="min-width:3000px">may scroll: folded away by default</td></tr></table></div></details>'
        '<img alt="broken" src="data:image/png;base64,AAAA">'
        '<script>console.error("boom");</script></body></html>'
    )
    problems = _checker().check_report(bad, widths=(1280,)).problems
    text = "\n".join(problems)
    assert "table wide sticks out" in text and "boxed sticks out" not in text
    assert "boxed scrolls sideways in its box" in text and "folded" not in text  # fine on a phone
    assert "image not shown: broken" in text and "console error: boom" in text
    assert "scrolls sideways" in text


def test_cli_evaluate_prints_random_ceiling_and_p(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import taskscout.evaluate.benchmark as benchmark
    import taskscout.pool.store as store
    from taskscout.cli.main import app
    from taskscout.io import write_bytes

    gt = synthetic_ground_truth(n_targets=3, n_sources=6)
    gt.save(tmp_path / "gt.json")
    write_bytes(tmp_path / "gt.runs.csv", gt.runs.to_csv(index=False).encode())
    result = method_result("esm-logme", gt, lambda s, t: int(s[1:]))
    monkeypatch.setattr(benchmark, "evaluate_method", lambda *a, **k: result)
    monkeypatch.setattr(benchmark, "catalog_loader", lambda: None)
    monkeypatch.setattr(store, "open_pool", lambda path: None)
    from taskscout.cli import evaluate as cli_evaluate

    monkeypatch.setattr(cli_evaluate.console, "width", 200)  # one line per row
    out = CliRunner().invoke(
        app, ["evaluate", "--ground-truth", str(tmp_path / "gt.json")], terminal_width=200
    )
    assert out.exit_code == 0, out.output
    assert "random ranking" in out.output and "noise ceiling" in out.output and "p vs random" in out.output
    assert "reliability 1.00" in out.output


def test_heatmap_groups_by_catalog_family_when_present(monkeypatch):
    from types import SimpleNamespace

    from taskscout.data import catalog
    from taskscout.evaluate.report import gain_heatmap

    gt = synthetic_ground_truth(n_targets=2, n_sources=4)
    families = {"s00": "topic", "s01": "sentiment", "s02": "topic", "t0": "sentiment"}
    entries = [SimpleNamespace(name=n, family=f) for n, f in families.items()]
    monkeypatch.setattr(catalog, "list_tasks", lambda: entries)
    fig = gain_heatmap(gt)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["s03", "s01 [sentiment]", "s00 [topic]", "s02 [topic]"]  # no family first
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["t1", "t0 [sentiment]"]
    monkeypatch.setattr(catalog, "list_tasks", lambda: [SimpleNamespace(name="s00")])  # no family field
    assert [t.get_text() for t in gain_heatmap(gt).axes[0].get_yticklabels()] == ["s00", "s01", "s02", "s03"]


def test_transfer_export_writes_paired_test_summary(tmp_path):
    """Re-exporting the committed small-v1 runs gives its records back, with the per-target signal."""
    from typer.testing import CliRunner

    from taskscout.cli.main import app
    from taskscout.evaluate.groundtruth import default_ground_truth_path
    from taskscout.io import read_json

    committed = default_ground_truth_path("small-v1")
    runs = committed.with_suffix(".runs.csv")
    out = tmp_path / "gt.json"
    args = ["transfer", "--benchmark", "--restore", str(runs), "--export-only", "--export", str(out)]
    db = ["--db", str(tmp_path / "runs.sqlite")]
    # The reference protocol is v2: small-v1's runs are refused for it, with the protocol to pass.
    refused = CliRunner().invoke(app, [*args, *db])
    assert refused.exit_code != 0 and "only of small-v1: pass --protocol" in str(refused.exception)
    assert not out.exists()
    result = CliRunner().invoke(app, [*args, *db, "--protocol", "small-v1"])
    assert result.exit_code == 0, result.output
    exported, original = read_json(out), read_json(committed)
    assert exported["records"] == original["records"]
    summary = {row["target"]: row for row in exported["significance"]}
    assert len(summary) == 8 and summary["drugreview_sentiment"]["beat_p05"] == 0
    assert 0.0 < summary["wordnet_verb_supersense"]["reliability"] < 1.0
    assert all(row["beat_fdr"] == 0 for row in summary.values())  # small-v1: nothing survives correction


def test_seeds_per_pair_says_when_runs_are_still_missing():
    import pandas as pd

    from taskscout.evaluate.report import _seeds_per_pair

    full = pd.DataFrame({"source": ["a", "a", "", ""], "target": ["t"] * 4, "seed": [0, 1, 0, 1]})
    assert _seeds_per_pair(full) == "2"
    assert _seeds_per_pair(full.iloc[1:]) == "1-2"  # source a has one seed so far


def test_regret_curves_tell_methods_of_one_family_apart():
    from taskscout.evaluate.report import regret_curves

    gt = synthetic_ground_truth()
    # esm-logme and esm-sgd-logme share the ESM colour; the recommended method and the papers' one
    # must still be two distinguishable lines.
    results = [
        method_result("esm-sgd-logme", gt, lambda s, t: int(s[1:]), ms=5.0),
        method_result("esm-logme", gt, lambda s, t: {"s10": 11, "s11": 10}.get(s, int(s[1:])), ms=8.0),
    ]
    fig = regret_curves(results, gt, compute_signal(results, gt, n_permutations=100))
    lines = {
        line.get_label(): (line.get_color(), line.get_marker(), str(line.get_linestyle()))
        for line in fig.axes[0].get_lines()
    }
    assert lines["esm-sgd-logme"][0] == lines["esm-logme"][0]  # one family, one colour
    assert lines["esm-sgd-logme"] != lines["esm-logme"]


def test_transfer_summary_says_what_the_seed_test_can_see_and_how_many_sources_gain(bench, tmp_path):
    gt, results, signal = bench
    text = transfer_summary(signal)
    low = 100 * min(signal.detectable.values())
    pairs = sum(len(g) for g in signal.gains.values())
    positive = sum(int((g["gain"] > 0).sum()) for g in signal.gains.values())
    assert text.startswith(f"With these seeds a paired test detects a mean gain of {low:.1f}-")
    assert f"{positive} of {pairs} source-target pairs gain anything at all" in text
    md, page = write_report(results, gt, tmp_path, signal=signal)
    assert text in md.read_text() and html.escape(text, quote=False) in page.read_text()
