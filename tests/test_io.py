"""Atomic writes and the inter-process lock that guard the shared caches."""

from __future__ import annotations

import fcntl
import json

import pytest

from taskscout.io import atomic_path, file_lock, read_json, write_json


def test_file_lock_excludes_other_holders(tmp_path):
    lock_path = tmp_path / "sub" / "model.lock"
    with file_lock(lock_path), open(lock_path, "a+") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock_path, "a+") as other:  # released after the block
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)


def test_atomic_path_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "results.json"
    write_json(target, {"runs": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("interrupted")
    assert read_json(target) == {"runs": 1}
    assert json.loads(target.read_text()) == {"runs": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_file_lock_without_waiting_reports_a_held_claim(tmp_path):
    claim = tmp_path / "claims" / "0-source.lock"
    with file_lock(claim, wait=False) as mine:
        assert mine is True
        with file_lock(claim, wait=False) as theirs:  # a second open file: another worker's view
            assert theirs is False
    with file_lock(claim, wait=False) as again:  # released with the block
        assert again is True
