"""Tests of :mod:`taskscout.data.loaders`: every source format, column inference, cleaning, bad input."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskscout.data.loaders import (
    MAX_TEXT_CHARS,
    ColumnChoice,
    LoadReport,
    infer_columns,
    load_task,
    load_task_with_report,
)
from taskscout.data.task import Task
from taskscout.errors import DataError
from taskscout.io import sha256_file

N = 20
TEXTS = [f"this is example sentence number {i}" for i in range(N)]
LABELS = ["pos", "neg"] * (N // 2)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"text": TEXTS, "label": LABELS})


def _check_basic(task: Task) -> None:
    assert len(task) == N
    assert task.task_type == "classification"
    assert task.label_names == ["neg", "pos"]
    assert task.texts == TEXTS
    assert task.labels.tolist() == [1, 0] * (N // 2)


def _one_line_error(excinfo: pytest.ExceptionInfo[DataError], *needles: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# ---------------------------------------------------------------------------------------------- formats
def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False)
    task, report = load_task_with_report(path)
    _check_basic(task)
    assert task.name == "data"
    assert task.provenance.registry == "file"
    assert task.provenance.file == str(path)
    assert task.provenance.sha256 == sha256_file(path)
    assert isinstance(report, LoadReport)
    assert report.rows_read == report.rows_kept == report.rows_returned == N
    assert report.dropped == 0


def test_tsv(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    _frame().to_csv(path, sep="\t", index=False)
    _check_basic(load_task(path))


@pytest.mark.parametrize("quoted_rows", [(3,), (3, 9)])
def test_tsv_with_unbalanced_quotes(tmp_path: Path, quoted_rows: tuple[int, ...]) -> None:
    # GLUE-style TSV: no quoting; a stray quote at the start of a text makes standard quoting fail (one)
    # or swallow the lines up to the next one (two)
    path = tmp_path / "glue.tsv"
    texts = [f'"{t}' if i in quoted_rows else t for i, t in enumerate(TEXTS)]
    lines = ["sentence\tlabel"] + [f"{t}\t{i % 2}" for i, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    task, report = load_task_with_report(path)
    assert task.texts == texts
    assert any("quote characters kept literally" in w for w in report.warnings)


def test_json_records_and_dict_of_lists(tmp_path: Path) -> None:
    records = tmp_path / "records.json"
    records.write_text(json.dumps(_frame().to_dict(orient="records")), encoding="utf-8")
    _check_basic(load_task(records))
    columns = tmp_path / "columns.json"
    columns.write_text(json.dumps({"text": TEXTS, "label": LABELS}), encoding="utf-8")
    _check_basic(load_task(columns))


def test_jsonl_and_ndjson(tmp_path: Path) -> None:
    for name in ("data.jsonl", "data.ndjson"):
        path = tmp_path / name
        path.write_text("\n".join(json.dumps(r) for r in _frame().to_dict(orient="records")) + "\n\n")
        _check_basic(load_task(path))


def test_json_holding_json_lines_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text("\n".join(json.dumps(r) for r in _frame().to_dict(orient="records")))
    task, report = load_task_with_report(path)
    _check_basic(task)
    assert any("JSON Lines" in w for w in report.warnings)


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    _frame().to_parquet(path)
    _check_basic(load_task(path))


@pytest.mark.parametrize("suffix", ["csv.gz", "jsonl.gz", "csv.bz2", "csv.xz", "csv.zip"])
def test_compressed(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data.{suffix}"
    if suffix.startswith("jsonl"):
        _frame().to_json(path, orient="records", lines=True, compression="infer")
    elif suffix.endswith("zip"):
        _frame().to_csv(path, index=False, compression={"method": "zip", "archive_name": "data.csv"})
    else:
        _frame().to_csv(path, index=False, compression="infer")
    task = load_task(path)
    _check_basic(task)
    assert task.name == "data"


def test_dataframe() -> None:
    frame = _frame()
    frame.index = range(100, 100 + N)  # a non-default index must not matter
    task, report = load_task_with_report(frame, name="mine", language="en")
    _check_basic(task)
    assert task.name == "mine"
    assert task.language == "en"
    assert task.provenance.registry == "dataframe"
    assert report.source == "the DataFrame"


def test_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _frame().to_csv(index=False).encode())
    _check_basic(load_task(path))


def test_encoding_parameter(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    frame = _frame()
    frame.loc[0, "text"] = "café au lait, très bon"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    task = load_task(path, encoding="latin-1")
    assert task.texts[0] == "café au lait, très bon"


# ---------------------------------------------------------------------------------------------- Hugging Face
datasets = pytest.importorskip("datasets")


def _hf_dataset() -> object:
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    return datasets.Dataset.from_dict(
        {"sentence": TEXTS, "label": [1, 0] * (N // 2)},
        features=features,
    )


def test_saved_dataset_dir_with_class_label(tmp_path: Path) -> None:
    target = tmp_path / "sst"
    _hf_dataset().save_to_disk(str(target))
    task, report = load_task_with_report(target)
    assert task.label_names == ["negative", "positive"]
    assert task.labels.tolist() == [1, 0] * (N // 2)
    assert task.texts == TEXTS
    assert task.name == "sst"
    assert task.provenance.registry == "huggingface"
    assert len(task.provenance.sha256) == 64
    assert "ClassLabel" in " ".join(report.choice.reasons)


def test_class_label_names_kept_even_if_unused_and_negative_ids_dropped(tmp_path: Path) -> None:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b", "c"])}
    )
    ds = datasets.Dataset.from_dict(
        {"text": TEXTS, "label": [0, 2] * (N // 2 - 1) + [-1, -1]}, features=features
    )
    ds.save_to_disk(str(tmp_path / "d"))
    task, report = load_task_with_report(tmp_path / "d")
    assert task.label_names == ["a", "b", "c"]
    assert sorted(set(task.labels.tolist())) == [0, 2]
    assert report.dropped_missing_label == 2


def test_saved_dataset_dict_split(tmp_path: Path) -> None:
    train = _hf_dataset()
    test = datasets.Dataset.from_dict(
        {"sentence": ["x y", "z w", "a b", "c d"], "label": [0, 1, 0, 1]}, features=train.features
    )
    target = tmp_path / "dd"
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(target))
    assert len(load_task(target)) == N  # "train" by default
    assert len(load_task(target, split="test")) == 4
    with pytest.raises(DataError) as excinfo:
        load_task(target, split="validation")
    _one_line_error(excinfo, "dd", "'validation'", "'train'", "'test'")


def test_saved_dataset_dict_without_train_needs_split(tmp_path: Path) -> None:
    ds = _hf_dataset()
    target = tmp_path / "dd2"
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(str(target))
    with pytest.raises(DataError) as excinfo:
        load_task(target)
    _one_line_error(excinfo, "dd2", "split=")


def test_hf_spec_with_local_saved_dir(tmp_path: Path) -> None:
    target = tmp_path / "saved"
    _hf_dataset().save_to_disk(str(target))
    task, report = load_task_with_report(f"hf:{target}")
    assert task.label_names == ["negative", "positive"]
    assert report.source == f"hf:{target}"


def test_hf_spec_load_dataset_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    raw = tmp_path / "raw"
    raw.mkdir()
    _frame().to_csv(raw / "train.csv", index=False)
    _frame().head(6).to_csv(raw / "test.csv", index=False)
    task = load_task(f"hf:{raw}")
    _check_basic(task)
    assert task.provenance.registry == "huggingface"
    assert task.provenance.package == str(raw)
    assert len(load_task(f"hf:{raw}", split="test")) == 6
    with pytest.raises(DataError) as excinfo:
        load_task(f"hf:{raw}", split="nope")
    _one_line_error(excinfo, str(raw), "'nope'")


def test_hf_spec_unreachable_dataset_is_a_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'someone/missing' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(DataError) as excinfo:
        load_task("hf:someone/missing:cfg")
    _one_line_error(excinfo, "someone/missing", "'cfg'")


def test_hf_spec_provenance(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []

    def fake(ident: str, cfg: str | None, split: str, revision: str | None) -> object:
        calls.append((ident, cfg, split, revision))
        return _hf_dataset()

    monkeypatch.setattr(datasets, "load_dataset", fake)
    task = load_task("hf:org/sst@abc123:default", split="validation")
    assert calls == [("org/sst", "default", "validation", "abc123")]
    assert task.name == "sst_default"
    assert task.provenance.package == "org/sst"
    assert task.provenance.version == "default@abc123"
    assert task.label_names == ["negative", "positive"]


def test_catalog_delegates(monkeypatch: pytest.MonkeyPatch) -> None:
    made = Task(name="tiny", texts=TEXTS, labels=np.array([0, 1] * (N // 2)), task_type="classification")
    fake = types.ModuleType("taskscout.data.catalog")
    calls = []
    fake.load = lambda name, **kw: calls.append(kw) or (made if name == "tiny" else None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "taskscout.data.catalog", fake)
    import taskscout.data as data_pkg

    monkeypatch.setattr(data_pkg, "catalog", fake, raising=False)
    task, report = load_task_with_report("catalog:tiny", max_rows=10, name="renamed")
    assert len(task) == 10
    assert task.name == "renamed"
    assert report.rows_read == N
    assert calls == [{"auto_fetch": True, "progress": False}]  # fetched on first use, silently by default
    load_task("catalog:tiny", fetch=False)
    assert calls[-1] == {"auto_fetch": False, "progress": False}
    with pytest.raises(DataError, match="label_column"):
        load_task("catalog:tiny", label_column="y")


# ---------------------------------------------------------------------------------------------- inference
def test_id_column_text_and_label() -> None:
    frame = pd.DataFrame({"id": range(N), "comment_body": TEXTS, "verdict": LABELS})
    choice = infer_columns(frame)
    assert isinstance(choice, ColumnChoice)
    assert (choice.text_column, choice.text_pair_column, choice.label_column) == (
        "comment_body",
        None,
        "verdict",
    )
    assert choice.task_type == "classification"
    assert len(choice.reasons) == 4


def test_unnamed_index_and_integer_row_numbers_are_not_labels() -> None:
    frame = pd.DataFrame({"Unnamed: 0": range(N), "row": range(N), "body": TEXTS, "y": [0, 1] * (N // 2)})
    frame = frame.rename(columns={"y": "outcome"})
    choice = infer_columns(frame)
    assert choice.label_column == "outcome"


def test_numeric_looking_string_labels_are_classes_in_natural_order() -> None:
    frame = pd.DataFrame({"text": TEXTS, "label": ["1", "2", "10", "2"] * (N // 4)})
    task = load_task(frame)
    assert task.task_type == "classification"
    assert task.label_names == ["1", "2", "10"]
    assert task.labels[:4].tolist() == [0, 1, 2, 1]


def test_string_labels_are_sorted_naturally() -> None:
    frame = pd.DataFrame({"text": TEXTS, "label": ["item10", "item2", "Beta", "alpha"] * (N // 4)})
    assert load_task(frame).label_names == ["Beta", "alpha", "item2", "item10"]


def test_float_ratings_with_five_values_are_classes() -> None:
    frame = pd.DataFrame({"review": TEXTS, "rating": [1.0, 2.0, 3.0, 4.0, 5.0] * (N // 5)})
    task, report = load_task_with_report(frame)
    assert task.task_type == "classification"
    assert task.label_names == ["1", "2", "3", "4", "5"]
    assert report.choice.task_type == "classification"
    assert load_task(frame, task_type="regression").labels.tolist() == frame["rating"].tolist()


def test_continuous_floats_are_regression() -> None:
    frame = pd.DataFrame({"text": TEXTS, "score": np.linspace(0.0, 5.0, N)})
    task = load_task(frame)
    assert task.task_type == "regression"
    assert task.labels.dtype == np.float64
    assert task.target_names == ["score"]


def test_many_distinct_integers_are_regression() -> None:
    frame = pd.DataFrame({"text": TEXTS, "target": list(range(100, 100 + N))[::-1]})
    assert infer_columns(frame).task_type == "regression"


def test_pair_columns() -> None:
    frame = pd.DataFrame(
        {
            "premise": TEXTS,
            "hypothesis": [t.upper() for t in TEXTS],
            "label": ["entailment", "neutral"] * (N // 2),
        }
    )
    task = load_task(frame)
    assert task.is_pair
    assert task.text_pairs == [t.upper() for t in TEXTS]


def test_pairs_are_not_guessed_from_content() -> None:
    frame = pd.DataFrame({"text": TEXTS, "other_text": [t[::-1] for t in TEXTS], "label": LABELS})
    choice = infer_columns(frame)
    assert choice.text_pair_column is None
    assert any("never guessed" in r for r in choice.reasons)
    assert load_task(frame, text_pair_column="other_text").is_pair


def test_label_named_column_holding_text() -> None:
    frame = pd.DataFrame(
        {"label": [f"a long free text example, number {i}" for i in range(N)], "kind": LABELS}
    )
    choice = infer_columns(frame)
    assert choice.text_column == "label"
    assert choice.label_column == "kind"
    assert any("label name" in w for w in choice.warnings)


def test_label_named_text_column_is_skipped_as_label() -> None:
    frame = pd.DataFrame(
        {"text": TEXTS, "target": [f"a long target summary text {i}" for i in range(N)], "c": LABELS}
    )
    choice = infer_columns(frame)
    assert choice.label_column == "c"
    assert any("'target'" in w for w in choice.warnings)


def test_all_caps_column_names() -> None:
    frame = pd.DataFrame({"ID": range(N), "SENTENCE": TEXTS, "LABEL": LABELS})
    choice = infer_columns(frame)
    assert (choice.text_column, choice.label_column) == ("SENTENCE", "LABEL")


def test_content_based_text_choice() -> None:
    frame = pd.DataFrame({"code": [f"c{i}" for i in range(N)], "blurb": TEXTS, "tag": LABELS})
    choice = infer_columns(frame)
    assert choice.text_column == "blurb"
    assert choice.label_column == "tag"
    assert any("by content" in r for r in choice.reasons)


def test_title_and_body_are_joined() -> None:
    frame = pd.DataFrame({"title": [f"T{i}" for i in range(N)], "body": TEXTS, "label": LABELS})
    task, report = load_task_with_report(frame)
    assert report.choice.text_column == "title+body"
    assert task.texts[0] == f"T0 {TEXTS[0]}"
    assert load_task(frame, text_column="body").texts == TEXTS


def test_list_valued_labels_are_multi_output_regression(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": TEXTS, "label": [[i * 0.1, 1 - i * 0.1] for i in range(N)]})
    task = load_task(frame)
    assert task.task_type == "regression"
    assert task.labels.shape == (N, 2)
    path = tmp_path / "lists.csv"  # JSON lists stored as text in a CSV
    frame.assign(label=[json.dumps(v) for v in frame["label"]]).to_csv(path, index=False)
    assert load_task(path).labels.shape == (N, 2)


def test_several_label_columns_are_multi_output_regression() -> None:
    frame = pd.DataFrame({"text": TEXTS, "valence": np.linspace(0, 1, N), "arousal": np.linspace(1, 2, N)})
    task = load_task(frame, label_column=["valence", "arousal"])
    assert task.labels.shape == (N, 2)
    assert task.target_names == ["valence", "arousal"]


def test_overrides_beat_inference() -> None:
    frame = pd.DataFrame({"text": TEXTS, "notes": [t + " note" for t in TEXTS], "label": [0, 1] * (N // 2)})
    frame["other"] = ["a", "b", "c", "d"] * (N // 4)
    choice = infer_columns(frame, text_column="notes", label_column="other", task_type="classification")
    assert (choice.text_column, choice.label_column, choice.task_type) == ("notes", "other", "classification")
    assert all("(given)" in r for r in choice.reasons if not r.startswith("text pair"))
    task = load_task(frame, label_column="label", task_type="regression")
    assert task.task_type == "regression"


def test_override_matches_case_insensitively() -> None:
    frame = pd.DataFrame({"Text": TEXTS, "Label": LABELS})
    assert infer_columns(frame, text_column="text", label_column="LABEL").label_column == "Label"


def test_mixed_labels_become_class_names_with_a_warning() -> None:
    frame = pd.DataFrame({"text": TEXTS, "label": pd.Series([1, "pos", 2, "neg"] * (N // 4), dtype=object)})
    task, report = load_task_with_report(frame)
    assert task.task_type == "classification"
    assert task.label_names == ["1", "2", "neg", "pos"]
    assert any("mixes numbers and text" in w for w in report.warnings)


# ---------------------------------------------------------------------------------------------- cleaning
def test_dropped_rows_are_counted(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[0, "text"] = None
    frame.loc[1, "text"] = "   "
    frame.loc[2, "label"] = None
    frame.loc[3, "label"] = ""
    frame.loc[4, ["text", "label"]] = [None, None]  # counted once, as a missing text
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    task, report = load_task_with_report(path)
    assert len(task) == N - 5
    assert report.dropped_missing_text == 3
    assert report.dropped_missing_label == 2
    assert report.rows_read == N and report.rows_kept == N - 5
    assert any("dropped 5 of 20 rows" in w for w in report.warnings)


def test_huge_cell_is_truncated(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[0, "text"] = "word " * 2_000_000  # 10 MB
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)
    task, report = load_task_with_report(path)
    assert len(task.texts[0]) == MAX_TEXT_CHARS
    assert report.truncated_texts == 1
    assert any("truncated 1" in w for w in report.warnings)


# ---------------------------------------------------------------------------------------------- sampling
def test_sampling_is_deterministic(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(200)], "label": ["a", "b", "c", "d"] * 50})
    first, report = load_task_with_report(frame, max_rows=40, seed=3)
    again = load_task(frame, max_rows=40, seed=3)
    other = load_task(frame, max_rows=40, seed=4)
    assert len(first) == 40 and report.rows_returned == 40 and report.rows_kept == 200
    assert first.texts == again.texts
    assert first.texts != other.texts
    assert sorted(first.label_counts().values()) == [10, 10, 10, 10]
    with pytest.raises(DataError, match="max_rows"):
        load_task(frame, max_rows=0)


# ---------------------------------------------------------------------------------------------- bad input
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_task(tmp_path / "nothere.csv")
    _one_line_error(excinfo, "nothere.csv", "does not exist")


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "data.xlsx", ".csv", ".parquet")


def test_plain_directory(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError) as excinfo:
        load_task(tmp_path / "folder")
    _one_line_error(excinfo, "folder", "save_to_disk")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.csv", "", "empty"),
        ("header.csv", "text,label\n", "no rows"),
        ("empty.jsonl", "\n", "no columns"),
        ("empty.json", "[]", "no columns"),
    ],
)
def test_empty_tables(tmp_path: Path, name: str, content: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, name, needle)


def test_empty_dataframe() -> None:
    with pytest.raises(DataError, match="no columns"):
        load_task(pd.DataFrame())
    with pytest.raises(DataError, match="no rows"):
        load_task(pd.DataFrame({"text": [], "label": []}))


def test_no_usable_text_column(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    pd.DataFrame({"a": range(N), "b": [0.5] * N}).to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "numbers.csv", "no usable text column", "'a'", "text_column=")


def test_no_label_column(tmp_path: Path) -> None:
    path = tmp_path / "textonly.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "textonly.csv", "label_column=")


def test_named_column_missing(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path, label_column="sentiment")
    _one_line_error(excinfo, "data.csv", "'sentiment'", "'text'", "'label'")
    with pytest.raises(DataError) as excinfo:
        load_task(path, text_column="label")
    _one_line_error(excinfo, "data.csv", "'label'")


def test_single_class(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"text": TEXTS, "y": ["pos"] * N}).to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    message = _one_line_error(excinfo, "data.csv", "'y'", "'pos'")
    assert message.startswith("label column 'y' in") and "has a single class 'pos'" in message


def test_mixed_labels_that_look_like_regression(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    values = [f"{0.37 * i:.2f}" for i in range(N)]
    values[5] = "unknown"
    pd.DataFrame({"text": TEXTS, "score": values}).to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "mixed.csv", "'score'", "'unknown'")
    with pytest.raises(DataError) as excinfo:
        load_task(path, task_type="regression")
    _one_line_error(excinfo, "mixed.csv", "'score'", "'unknown'", "row 6")
    assert load_task(path, task_type="classification").num_classes == N


def test_infinite_regression_label(tmp_path: Path) -> None:
    path = tmp_path / "inf.csv"
    pd.DataFrame({"text": TEXTS, "score": [0.5] * (N - 1) + [np.inf]}).to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path, task_type="regression")
    _one_line_error(excinfo, "inf.csv", "'score'", f"row {N}")


def test_all_labels_missing(tmp_path: Path) -> None:
    path = tmp_path / "nolabels.csv"
    pd.DataFrame({"text": TEXTS, "label": [None] * N}).to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path, label_column="label")
    _one_line_error(excinfo, "nolabels.csv", "'label'", "no values")
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "nolabels.csv", "'label' has no values", "label_column=")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"text,label\ncaf\xe9 au lait,pos\nbad,neg\n")
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    message = _one_line_error(excinfo, "data.csv", "not UTF-8", "0xe9", "position 14", "encoding=")
    assert "line 2" in message
    gz = tmp_path / "data.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "caf\xe9", "label": 1}\n'))
    with pytest.raises(DataError) as excinfo:
        load_task(gz)
    _one_line_error(excinfo, "data.jsonl.gz", "0xe9")


def test_unknown_encoding(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(DataError, match="unknown encoding"):
        load_task(path, encoding="klingon")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"text": "a", "label": 1}', "keys 'text', 'label'"),
        ('"just a string"', "a string"),
        ("[1, 2, 3]", "item 0 is a number"),
        ('{"text": ["a", "b"], "label": [1]}', "different lengths"),
        ("{not json", "not valid JSON"),
    ],
)
def test_json_not_records(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "bad.json", needle)


def test_jsonl_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": 1}\n[1, 2]\n')
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "bad.jsonl", "line 2")


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    good = tmp_path / "good.parquet"
    _frame().to_parquet(good)
    path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "broken.parquet", "Parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError) as excinfo:
        load_task(junk)
    _one_line_error(excinfo, "junk.parquet")


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "data.csv.gz", "gzip")


def test_semicolon_csv(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    _frame().to_csv(path, sep=";", index=False)
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "semi.csv", "';'")


def test_ragged_csv(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\na,1\nb,2,3,4\n")
    with pytest.raises(DataError) as excinfo:
        load_task(path)
    _one_line_error(excinfo, "ragged.csv", "CSV")


def test_bad_arguments() -> None:
    with pytest.raises(DataError, match="task_type"):
        load_task(_frame(), task_type="ranking")
    with pytest.raises(DataError, match="both"):
        load_task(_frame(), text_column="text", label_column="text")
    with pytest.raises(DataError, match="cannot load"):
        load_task(42)  # type: ignore[arg-type]
