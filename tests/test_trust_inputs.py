"""Careless and awkward inputs: bounded reading, honest warnings, output paths, markup, the home directory.

Includes property-based tests (hypothesis) over pool index/config contents and over CSV inputs: whatever
they hold, reading them either works or raises the project's one-line errors, never anything else.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskscout.data.loaders import load_task, load_task_with_report
from taskscout.errors import DataError, PoolError, TaskscoutError
from taskscout.pool.schema import EntryConfig, parse_config
from taskscout.pool.store import Pool
from taskscout.ranking import rank, target_warnings, validate_target
from tests.conftest import make_task
from tests.conftest import run_cli as run

FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no example database written into the working directory
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def write_csv(path: Path, rows: int = 40, classes: int = 2) -> Path:
    pd.DataFrame(
        {"text": [f"text number {i} here" for i in range(rows)], "label": [i % classes for i in range(rows)]}
    ).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------ bounded reading
def test_size_limit_is_one_clear_error(tmp_path):
    csv = write_csv(tmp_path / "big.csv", rows=200)
    with pytest.raises(DataError, match=r"larger than 1,000 bytes.*--max-bytes"):
        load_task(csv, max_bytes=1000)
    packed = tmp_path / "big.csv.gz"
    packed.write_bytes(gzip.compress(csv.read_bytes()))
    with pytest.raises(DataError, match="decompresses to more than 1,000 bytes"):
        load_task(packed, max_bytes=1000)
    assert len(load_task(packed, max_bytes=10**6)) == 200


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_row_cap_applies_while_reading_and_warns(tmp_path, suffix):
    frame = pd.DataFrame(
        {"text": [f"row {i} text" for i in range(100)], "label": [i % 2 for i in range(100)]}
    )
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    task, report = load_task_with_report(path, max_read_rows=30)
    assert len(task) == 30 and task.texts[0] == "row 0 text"
    assert any("read only the first 30 rows" in w for w in report.warnings)
    task, report = load_task_with_report(path, max_read_rows=100)
    assert len(task) == 100 and not any("read only" in w for w in report.warnings)


def test_wide_sparse_csv_is_capped_by_cells(tmp_path, monkeypatch):
    from taskscout.data.readers import files

    monkeypatch.setattr(files, "MAX_READ_CELLS", 2000)
    header = "text,label," + ",".join(f"c{i}" for i in range(98))
    lines = [header] + [f"text {i} words,{i % 2}" + "," * 98 for i in range(100)]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")
    task, report = load_task_with_report(tmp_path / "wide.csv", text_column="text", label_column="label")
    assert len(task) == 20  # 2,000 cells / 100 columns
    assert any("read only the first 20 rows" in w for w in report.warnings)


def test_bad_limits_are_rejected(tmp_path):
    csv = write_csv(tmp_path / "a.csv")
    for bad in (0, -1, True, 1.5):
        with pytest.raises(DataError, match="max_read_rows must be a positive integer"):
            load_task(csv, max_read_rows=bad)


@FAST
@given(
    text=st.text(
        alphabet=st.sampled_from([*string.printable, "é", "\u200b", "\x00", '"', "\r"]), max_size=400
    )
)
def test_any_csv_text_loads_or_fails_with_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "awkward.csv"
    path.write_text(text, encoding="utf-8")
    try:
        task = load_task(path)
    except DataError as exc:
        assert "\n" not in str(exc).strip()
    else:
        assert len(task) == len(task.texts) == len(task.labels)


@FAST
@given(
    labels=st.lists(
        st.one_of(st.integers(-3, 3), st.sampled_from(["spam", "ham", "1", " 0 ", "", "NA"]), st.none()),
        min_size=1,
        max_size=30,
    )
)
def test_mixed_label_columns_load_or_fail_with_one_line(tmp_path_factory, labels):
    path = tmp_path_factory.mktemp("labels") / "mixed.csv"
    pd.DataFrame({"text": [f"text {i} words" for i in range(len(labels))], "label": labels}).to_csv(
        path, index=False
    )
    try:
        task, report = load_task_with_report(path)
    except DataError as exc:
        assert "\n" not in str(exc).strip()
    else:
        assert len(task) == report.rows_kept


# ------------------------------------------------------------------------------------ target honesty
def test_target_of_mostly_single_row_classes_is_refused():
    texts = [f"text {i}" for i in range(40)]
    labels = np.asarray(list(range(30)) + [0] * 10)
    from taskscout.data.task import Task

    task = Task("ids", texts, labels, "classification", label_names=[str(i) for i in range(30)])
    with pytest.raises(DataError, match="30 classes have a single row"):
        validate_target(task)


def test_small_classes_are_summarised_in_one_warning():
    task = make_task("t", n=60, classes=3)
    keep = np.flatnonzero(task.labels != 2)[:50].tolist() + np.flatnonzero(task.labels == 2)[:3].tolist()
    notes = target_warnings(task.select(np.asarray(keep)), ["column 'x' was skipped"])
    assert notes[0] == "column 'x' was skipped"
    assert any("1 classes have fewer than 10 rows" in n and "'sport' has 3 rows" in n for n in notes)


def test_top_must_be_positive():
    for bad in (0, -1, True):
        with pytest.raises(DataError, match="top must be a positive number"):
            rank(make_task("t", n=60), top=bad)


# ------------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("top", ["0", "-1"])
def test_cli_top_below_one_is_a_usage_error(monkeypatch, capsys, top):
    code, _, err = run(monkeypatch, capsys, "rank", "--top", top)
    assert code == 2 and "--top" in err


def test_unwritable_outputs_fail_before_any_work(monkeypatch, capsys, tmp_path):
    target = write_csv(tmp_path / "t.csv")
    (tmp_path / "dir.json").mkdir()
    code, out, err = run(monkeypatch, capsys, "rank", str(target), "--json", str(tmp_path / "dir.json"))
    assert code == 2 and "is a directory" in err and "Traceback" not in err
    assert "Sources for" not in out  # nothing was ranked
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # running as root: permissions are not enforced
        pytest.skip("permissions are not enforced for this user")
    code, _, err = run(monkeypatch, capsys, "rank", str(target), "--csv", str(locked / "out.csv"))
    assert code == 2 and "cannot create files" in err


def test_markup_in_names_is_printed_literally(monkeypatch, capsys, tmp_path):
    weird = tmp_path / "a[bold]b[red].csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(20)], "label": ["[/]x"] * 20}).to_csv(weird, index=False)
    code, out, err = run(monkeypatch, capsys, "rank", str(weird))
    assert code == 2 and "'[/]x'" in err and "a[bold]b[red].csv" in err and "Traceback" not in out + err
    pd.DataFrame({"text": [f"t {i}" for i in range(20)], "label": ["[/]x", "[b]y"] * 10}).to_csv(
        weird, index=False
    )
    code, out, err = run(monkeypatch, capsys, "inspect", str(weird))
    assert code == 0 and "[/]x" in out and "[b]y" in out and "Traceback" not in out + err


def test_pool_remove_never_touches_the_builtin_pool(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "pool", "remove", "bbc_topic")
    assert code == 2 and "not a taskscout pool" in err  # the default for writing is the user's own pool
    from taskscout.pool.store import default_pool_path

    code, _, err = run(monkeypatch, capsys, "pool", "remove", "bbc_topic", "--pool", str(default_pool_path()))
    assert code == 2 and "read-only" in err
    assert Pool(default_pool_path()).has("esm", "bbc_topic")


def test_pool_verify_cli(monkeypatch, capsys, tmp_path):
    from taskscout.pool.store import default_pool_path

    code, out, _ = run(monkeypatch, capsys, "pool", "verify")  # the built-in pool
    assert code == 0 and f"{len(Pool(default_pool_path()).entries())} entries verified; ok" in out
    pool = Pool.create(tmp_path / "p")
    data = tmp_path / "v.npy"
    np.save(data, np.arange(3, dtype=np.uint64))
    entry = pool.add_entry("vocab", "s", {"vocab.npy": data}, {"base_model_name": "m"})
    (entry.path / "vocab.npy").write_bytes(b"tampered")
    code, _, err = run(monkeypatch, capsys, "pool", "verify", "--pool", str(pool.path))
    assert code == 1 and "checksum mismatch in vocab.npy" in err
    code, out, err = run(monkeypatch, capsys, "pool", "verify", "--repair", "--pool", str(pool.path))
    assert code == 1 and "index rebuilt" in out and pool.entries() == []


def test_bad_home_is_one_line(monkeypatch, capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("TASKSCOUT_HOME", str(tmp_path / "file" / "home"))
    code, out, err = run(monkeypatch, capsys, "pool", "build", "x")
    assert code == 2 and "TASKSCOUT_HOME" in err and "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1


def test_atomic_writes_follow_the_umask(tmp_path):
    from taskscout.io import atomic_dir, write_json

    old = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {})
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o750


# ------------------------------------------------------------------------------------ pool metadata
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
NAMEISH = st.one_of(
    st.sampled_from(["esm", "src_a", "..", ".", "../x", "/abs", "a/b", "", "ok.name", "x" * 200]), st.text()
)


@FAST
@given(
    rows=st.lists(
        st.one_of(
            JSON,
            st.fixed_dictionaries(
                {"kind": NAMEISH, "source": NAMEISH, "config_sha256": st.text(max_size=70), "meta": JSON}
            ),
        ),
        max_size=5,
    )
)
def test_any_index_content_reads_safely(tmp_path_factory, rows):
    pool = Pool.create(tmp_path_factory.mktemp("pools") / "p")
    (pool.path / "index.json").write_text(json.dumps({"format_version": 2, "entries": rows}))
    entries = pool.entries()
    root = os.path.realpath(pool.path / "entries")
    for entry in entries:
        assert os.path.realpath(entry.path).startswith(root + os.sep)
        with pytest.raises(PoolError):
            entry.verify()  # nothing is on disk for them
    assert len(entries) + len(pool.problems) <= len(rows)


@FAST
@given(data=st.dictionaries(st.sampled_from(["files", "num_examples", "kind", "base_model_dim", "x"]), JSON))
def test_any_config_content_parses_or_fails_with_one_line(data):
    try:
        config = parse_config(data, "entry e")
    except TaskscoutError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(config, EntryConfig) and "kind" not in config.to_json_dict()
        assert all("/" not in name for name in config.files)
