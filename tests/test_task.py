import numpy as np
import pytest

from taskscout.data.task import Task
from taskscout.errors import DataError
from tests.conftest import make_task


def test_subsample_is_deterministic_and_stratified():
    task = make_task(n=1000, classes=3, seed=1)
    a, b = task.subsample(300, seed=7), task.subsample(300, seed=7)
    assert a.texts == b.texts and np.array_equal(a.labels, b.labels)
    assert task.subsample(300, seed=8).texts != a.texts
    full = np.bincount(task.labels) / len(task)
    part = np.bincount(a.labels, minlength=3) / len(a)
    assert np.abs(full - part).max() < 0.01  # proportional interleaving keeps proportions tight


def test_subsample_prefix_property():
    # A smaller sample with the same seed is a subset of a larger one: source training rows are a
    # subset of the ESM fit texts.
    task = make_task(n=500, classes=3)
    small, large = task.subsample(100, seed=3), task.subsample(250, seed=3)
    assert set(small.texts) <= set(large.texts)


def test_subsample_noop_and_invalid():
    task = make_task(n=50)
    assert task.subsample(100) is task
    assert task.subsample(None) is task
    with pytest.raises(DataError):
        task.subsample(0)


def test_split_disjoint_and_stratified():
    task = make_task(n=400, classes=2, seed=3)
    train, test = task.split(0.25, seed=0)
    assert len(test) == 100 and len(train) == 300
    assert not set(zip(train.texts, range(len(train)), strict=True)) & set()  # sanity of types
    idx_train = {t for t in train.texts}
    assert all(t in task.texts for t in idx_train)
    assert abs(test.labels.mean() - task.labels.mean()) < 0.03
    with pytest.raises(DataError, match="cannot split"):
        task.split(0, seed=0)


def test_validation_errors():
    with pytest.raises(DataError, match="2 texts but 3 labels"):
        Task("x", ["a", "b"], np.array([0, 1, 1]), "classification")
    with pytest.raises(DataError, match="NaN"):
        Task("x", ["a", "b"], np.array([0.0, np.nan]), "regression")
    with pytest.raises(DataError, match="unknown task type"):
        Task("x", ["a"], np.array([0]), "ranking")
    with pytest.raises(DataError, match="label ids outside"):
        Task("x", ["a", "b"], np.array([0, 5]), "classification", label_names=["a", "b"])


def test_summary_and_warnings():
    task = Task(
        "t", ["a b", "c", "d e f", ""], np.array([0, 0, 0, 1]), "classification", label_names=["x", "y", "z"]
    )
    summary = task.summary()
    assert summary["rows"] == 4 and summary["label_counts"] == {"x": 3, "y": 1, "z": 0}
    notes = task.warnings()
    assert any("class 'y' has 1 row" in n for n in notes)
    assert any("class 'z' has no rows" in n for n in notes)
    assert any("empty texts" in n for n in notes)
    reg = make_task(regression=True)
    assert reg.summary()["num_outputs"] == 1


def test_roundtrip_frame_and_fingerprint():
    task = make_task(pair=True, regression=True)
    again = Task.from_frame(task.to_pandas(), task.metadata())
    assert again.fingerprint() == task.fingerprint()
    multi = Task("m", ["a", "b", "c"], np.arange(6.0).reshape(3, 2), "regression")
    back = Task.from_frame(multi.to_pandas(), multi.metadata())
    assert back.labels.shape == (3, 2) and np.allclose(back.labels, multi.labels)
    assert multi.num_classes == 2


def test_deduplicate_keeps_first_and_distinct_labels():
    task = Task("d", ["a", "b", "a", "a"], np.array([0, 1, 0, 1]), "classification")
    dedup = task.deduplicate()
    assert dedup.texts == ["a", "b", "a"] and list(dedup.labels) == [0, 1, 1]
    assert make_task(n=30).deduplicate().texts  # no crash on pair-free tasks
