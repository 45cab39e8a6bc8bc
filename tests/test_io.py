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


def test_a_claim_held_by_another_process_is_seen_and_dies_with_it(tmp_path):
    """Across processes: a live holder's claim is reported as taken; a killed holder leaves none."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import taskscout

    src = str(Path(taskscout.__file__).resolve().parents[1])  # this tree's package, not another install
    claim = tmp_path / "claims" / "1-source.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom taskscout.io import file_lock\n"
            f"with file_lock({str(claim)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with file_lock(claim, wait=False) as free:
            assert free is False
    finally:
        holder.kill()
        holder.wait()
    with file_lock(claim, wait=False) as free:
        assert free is True
    assert claim.exists()  # the lock file is kept: deleting it would race with a process opening it
