"""The benchmark summary taskscout shows beside rankings (``evaluate.quality``): written by the report,
read back exactly, refused with one line when damaged, and the packaged one valid."""

from __future__ import annotations

import json

import pytest

from taskscout.errors import TaskscoutError
from taskscout.evaluate.quality import (
    PACKAGED_QUALITY,
    BenchmarkQuality,
    load_benchmark_quality,
    p_phrase,
)
from taskscout.evaluate.report import benchmark_quality, verdict, write_report
from tests.test_report import bench  # noqa: F401  (the fixture)


def test_summary_round_trips_and_matches_the_report(bench, tmp_path):  # noqa: F811
    gt, results, signal = bench
    write_report(results, gt, tmp_path, signal=signal)
    quality = load_benchmark_quality(tmp_path / "summary.json")
    assert quality == benchmark_quality(results, gt, signal)
    assert quality.protocol == "synthetic" and quality.n_targets == 6 and quality.n_sources == 12
    assert quality.random == pytest.approx(signal.random["ndcg"])
    # Its "better than random" is the report's: the same methods, by the same correction.
    better = {m for m, q in quality.methods.items() if q.significant}
    assert better == {"oracle", "cheap-good"}
    assert all(m in verdict(results, signal)[0] for m in better)
    oracle = quality.methods["oracle"]
    assert oracle.ci_low <= oracle.mean <= oracle.ci_high and oracle.targets == 6


def test_describe_puts_chance_and_noise_beside_the_method(bench):  # noqa: F811
    gt, results, signal = bench
    quality = benchmark_quality(results, gt, signal)
    good, bad = quality.describe("oracle"), quality.describe("reverse")
    assert good.startswith("On benchmark `synthetic` (6 targets, 12 sources), oracle ranked with NDCG 100.0")
    assert f"a random order of the same sources scores {quality.random:.1f}" in good
    assert f"the noise ceiling is {quality.noise_ceiling:.1f}" in good
    assert ": better than random (p = 0.002; significance corrected over 4 methods)." in good
    assert ": not measurably better than random (p = " in bad
    assert quality.describe("nope").startswith("nope was not run on benchmark `synthetic`")
    assert p_phrase(0.0004) == "p < 0.001" and p_phrase(0.0421) == "p = 0.042"
    assert p_phrase(float("nan")) == "p unknown"


@pytest.mark.parametrize(
    "content",
    ["not json", "[1, 2]", json.dumps({"format": 99}), json.dumps({"format": 1, "protocol": "x"})],
)
def test_damaged_summary_is_one_clear_line(tmp_path, content):
    path = tmp_path / "summary.json"
    path.write_text(content)
    with pytest.raises(TaskscoutError) as info:
        load_benchmark_quality(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_missing_packaged_summary_is_none_but_a_missing_given_file_is_an_error(tmp_path, monkeypatch):
    import taskscout.evaluate.quality as quality

    monkeypatch.setattr(quality, "PACKAGED_QUALITY", tmp_path / "absent.json")
    assert quality.load_benchmark_quality() is None
    with pytest.raises(TaskscoutError, match=r"absent\.json"):
        quality.load_benchmark_quality(tmp_path / "absent.json")


def test_packaged_summary_is_a_committed_benchmark_with_known_methods():
    from taskscout.evaluate.suites import SUITES
    from taskscout.methods import registry

    quality = load_benchmark_quality()
    assert isinstance(quality, BenchmarkQuality) and quality.protocol in SUITES
    assert quality.n_targets == len(SUITES[quality.protocol].targets)
    known = set(registry())
    for name in quality.methods:
        parts = name.removeprefix("fusion:").split("+")
        assert set(parts) <= known, name
    assert quality.random < quality.noise_ceiling and PACKAGED_QUALITY.exists()
