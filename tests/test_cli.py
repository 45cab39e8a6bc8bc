"""The command line: help, one-line errors with non-zero exit codes, and the main verbs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import make_task
from tests.conftest import run_cli as run


def test_help_lists_verbs(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "--help")
    assert code == 0
    for verb in ("rank", "inspect", "data", "pool", "transfer", "evaluate", "bench", "methods"):
        assert verb in out


def test_methods_table(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "methods")
    assert code == 0 and "esm-logme" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["inspect", "no_such_file.csv"], "no_such_file.csv"),
        (["data", "show", "rt_sentimnt"], "rt_sentiment"),  # suggests the close match
        (["pool", "list", "--pool", "."], "not a taskscout pool"),
        (["bench", "--stored", "--out", "reports"], "no stored rankings at reports/scores.json"),
        (["bench", "--stored", "--readme", "NOTES.md"], "cannot read NOTES.md"),  # before any work
    ],
)
def test_user_errors_are_one_line(monkeypatch, capsys, tmp_path, args, expected):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(monkeypatch, capsys, *args)
    assert code != 0
    assert expected in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_inspect_reports_columns_and_warnings(monkeypatch, capsys, tmp_path):
    frame = pd.DataFrame(
        {
            "id": range(40),
            "review": [f"text number {i} is fine" for i in range(40)],
            "label": ["pos"] * 37 + ["neg"] * 3,
        }
    )
    frame.to_csv(tmp_path / "data.csv", index=False)
    code, out, _ = run(monkeypatch, capsys, "inspect", str(tmp_path / "data.csv"), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["report"]["choice"]["text_column"] == "review"
    assert report["summary"]["label_counts"] == {"neg": 3, "pos": 37}
    assert any("'neg' has 3 rows" in w for w in report["warnings"])


def test_rank_with_single_class_target_fails_cleanly(monkeypatch, capsys, tmp_path):
    frame = pd.DataFrame({"text": [f"sentence {i}" for i in range(30)], "label": ["a"] * 30})
    frame.to_csv(tmp_path / "one.csv", index=False)
    code, _, err = run(monkeypatch, capsys, "rank", str(tmp_path / "one.csv"))
    assert code != 0 and "single class" in err and "Traceback" not in err


def test_rank_json_and_csv_outputs(monkeypatch, capsys, tmp_path, tiny_model_dir):
    from taskscout.pool.build import build_pool
    from taskscout.pool.config import BuildConfig
    from taskscout.pool.store import Pool
    from taskscout.train.config import TrainConfig

    pool = Pool.create(tmp_path / "pool")
    config = BuildConfig(
        model=str(tiny_model_dir),
        max_train_rows=32,
        max_fit_texts=48,
        train=TrainConfig(epochs=1, batch_size=16, max_length=32),
    )
    build_pool(
        pool, [make_task("src_a", n=80, seed=1), make_task("src_b", n=80, seed=2)], config, progress=False
    )
    make_task("target", n=50, seed=5).to_pandas().assign(
        label=lambda f: f["label"].map({0: "neg", 1: "pos"})
    ).to_csv(tmp_path / "target.csv", index=False)
    code, out, err = run(
        monkeypatch,
        capsys,
        "rank",
        str(tmp_path / "target.csv"),
        "--pool",
        str(pool.path),
        "--json",
        str(tmp_path / "r.json"),
        "--csv",
        str(tmp_path / "r.csv"),
    )
    assert code == 0, err
    assert "src_a" in out and "src_b" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [r["source"] for r in saved["ranking"]] == list(pd.read_csv(tmp_path / "r.csv")["source"])
    code, out, _ = run(monkeypatch, capsys, "pool", "list", "--pool", str(pool.path), "--json")
    assert code == 0 and {e["source"] for e in json.loads(out)} == {"src_a", "src_b"}
