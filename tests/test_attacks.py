"""Hostile and careless inputs: crafted pool archives, tampered pools, killed imports.

Every archive is built here, inside a temporary directory that also holds an "outside" directory next to
the pool. Each test asserts that nothing outside the pool was created, changed or deleted, and that the
pool is either unchanged or fully updated.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from taskscout.errors import PoolError, TaskscoutError
from taskscout.pool import archive as archive_module
from taskscout.pool.store import Pool, default_pool_path

META = {
    "base_model_name": "tiny/model",
    "base_model_fingerprint": "0123456789abcdef",
    "task_type": "classification",
    "language": "en",
    "num_examples": 100,
}


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (links not followed) with its content hash or type."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def visible(pool: Pool) -> dict[str, str]:
    """What readers see: every indexed entry with its config checksum (staging and locks excluded)."""
    return {e.label: e.config_sha256 for e in pool.entries()}


@pytest.fixture
def world(tmp_path):
    """A pool with two entries, an outside directory with a file in it, and their snapshots."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("do not touch")
    pool = Pool.create(tmp_path / "pool")
    for source in ("src_a", "src_b"):
        data = tmp_path / f"{source}.npy"
        np.save(data, np.arange(8, dtype=np.uint64))
        pool.add_entry("vocab", source, {"vocab.npy": data, "text_hashes.npy": data}, META)
    return pool, outside, snapshot(outside)


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def pool_json(version: int = 2) -> bytes:
    return json.dumps({"format": "taskscout-pool", "format_version": version}).encode()


def exported(world, tmp_path, name: str = "good.tar.gz") -> Path:
    pool, _, _ = world
    return pool.export(tmp_path / name)


def unpack_members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]


def assert_untouched(world, before_pool: dict[str, str], target: Pool) -> None:
    _, outside, outside_before = world
    assert snapshot(outside) == outside_before
    assert visible(target) == before_pool
    target.verify()  # no exception: every visible entry verifies
    assert not any((target.path / ".staging").glob("*")) if (target.path / ".staging").exists() else True


# ------------------------------------------------------------------------------------ round trip
def test_export_import_round_trip_verifies(world, tmp_path):
    archive = exported(world, tmp_path)
    other = Pool.create(tmp_path / "other")
    assert other.import_archive(archive) == ["vocab/src_a", "vocab/src_b"]
    assert visible(other) == visible(world[0])
    assert other.verify().clean
    assert other.import_archive(archive) == []  # existing entries are kept without --overwrite


# ------------------------------------------------------------------------------------ member checks
@pytest.mark.parametrize(
    "members",
    [
        [file_member("../outside/planted.txt", b"x")],
        [file_member("entries/esm/../../../outside/planted.txt", b"x")],
        [file_member("/tmp/absolute-planted.txt", b"x")],
        [file_member("entries/esm/a\\..\\b/config.json", b"{}")],
        [link_member("entries/esm/a/esm.safetensors", "../../../../outside/precious.txt")],
        [link_member("entries/esm/a", "../../../outside")],
        [link_member("entries/esm/a/esm.safetensors", "pool.json", tarfile.LNKTYPE)],
        [link_member("entries/esm/a/fifo", "", tarfile.FIFOTYPE)],
        [link_member("entries/esm/a/dev", "", tarfile.CHRTYPE)],
        [file_member("sitecustomize.py", b"import os")],
        [file_member("entries/esm/a/sub/deep.bin", b"x")],
        [file_member("pool.json", pool_json()), file_member("pool.json", pool_json())],
    ],
    ids=[
        "parent",
        "nested-parent",
        "absolute",
        "backslash",
        "symlink-file",
        "symlink-dir",
        "hardlink",
        "fifo",
        "device",
        "outside-layout",
        "too-deep",
        "duplicate",
    ],
)
def test_bad_members_reject_the_whole_archive(world, tmp_path, members):
    pool, _, _ = world
    before = visible(pool)
    # A valid entry first: a rejected archive must not leave it imported either.
    good = unpack_members(exported(world, tmp_path))
    archive = make_tar(tmp_path / "bad.tar.gz", [file_member(m.name, d) for m, d in good] + members)
    with pytest.raises(PoolError, match=r"not imported|not part of a pool"):
        pool.import_archive(archive, overwrite=True)
    assert not Path("/tmp/absolute-planted.txt").exists()
    assert_untouched(world, before, pool)


def test_cve_2025_4517_style_link_chain_is_rejected(world, tmp_path):
    """The published bypass chains directory symlinks through long names; no link of any kind passes."""
    pool, _, _ = world
    before = visible(pool)
    long = "d" * 120
    members = [
        link_member(f"entries/esm/{long}", "."),
        link_member("entries/esm/lnk", f"{long}/" + "../" * 8 + "outside"),
        file_member("entries/esm/lnk/planted.txt", b"x"),
    ]
    archive = make_tar(tmp_path / "chain.tar.gz", [file_member("pool.json", pool_json(1)), *members])
    with pytest.raises(PoolError):
        pool.import_archive(archive)
    assert_untouched(world, before, pool)


# ------------------------------------------------------------------------------------ layout decides
def test_v1_config_kind_and_source_cannot_move_an_entry(world, tmp_path):
    """Version 1 let config.json override kind/source; now the directory layout alone decides."""
    pool, outside, _ = world
    data = b"\x93NUMPY-not-really"
    config = {
        **META,
        "kind": "../../outside",
        "source": str(outside / "abs"),
        "files": {"vocab.npy": hashlib.sha256(data).hexdigest()},
    }
    archive = make_tar(
        tmp_path / "v1.tar.gz",
        [
            file_member("pool.json", pool_json(1)),
            file_member("entries/vocab/src_c/config.json", json.dumps(config).encode()),
            file_member("entries/vocab/src_c/vocab.npy", data),
        ],
    )
    assert pool.import_archive(archive) == ["vocab/src_c"]
    entry = pool.get("vocab", "src_c")
    assert entry.path == pool.path / "entries" / "vocab" / "src_c"
    assert "kind" not in entry.meta and "source" not in entry.meta
    assert snapshot(outside) == world[2]


def test_v2_config_with_kind_is_rejected(world, tmp_path):
    pool, _, _ = world
    before = visible(pool)
    members = unpack_members(exported(world, tmp_path))
    rebuilt = []
    for info, data in members:
        if info.name == "entries/vocab/src_a/config.json":
            data = json.dumps({**json.loads(data), "kind": "../../outside"}).encode()
        rebuilt.append(file_member(info.name, data))
    archive = make_tar(tmp_path / "kind.tar.gz", rebuilt)
    with pytest.raises(PoolError, match=r"config\.json"):
        pool.import_archive(archive, overwrite=True)
    assert_untouched(world, before, pool)


# ------------------------------------------------------------------------------------ checksums
@pytest.mark.parametrize("victim", ["vocab.npy", "config.json"])
def test_tampered_file_is_rejected_not_resigned(world, tmp_path, victim):
    pool, _, _ = world
    before = visible(pool)
    members = unpack_members(exported(world, tmp_path))
    rebuilt = []
    for info, data in members:
        if info.name == f"entries/vocab/src_b/{victim}":
            data = data.replace(b"1", b"2") if victim == "config.json" else data[:-1] + b"\x07"
        rebuilt.append(file_member(info.name, data))
    archive = make_tar(tmp_path / "tampered.tar.gz", rebuilt)
    other = Pool.create(tmp_path / "other")
    with pytest.raises(PoolError, match="checksum mismatch"):
        other.import_archive(archive)
    assert other.entries() == []  # all or nothing: src_a (valid) was not imported either
    with pytest.raises(PoolError, match="checksum mismatch"):
        pool.import_archive(archive, overwrite=True)
    assert_untouched(world, before, pool)


def test_unlisted_extra_file_is_rejected(world, tmp_path):
    members = [file_member(m.name, d) for m, d in unpack_members(exported(world, tmp_path))]
    archive = make_tar(tmp_path / "extra.tar.gz", [*members, file_member("entries/vocab/src_a/x.py", b"1")])
    other = Pool.create(tmp_path / "other")
    with pytest.raises(PoolError, match=r"unexpected file x\.py"):
        other.import_archive(archive)
    assert other.entries() == []


# ------------------------------------------------------------------------------------ size caps
def test_size_file_count_and_ratio_caps(world, tmp_path, monkeypatch):
    pool, _, _ = world
    before = visible(pool)
    members = [file_member(m.name, d) for m, d in unpack_members(exported(world, tmp_path))]
    archive = make_tar(tmp_path / "a.tar.gz", members)
    with pytest.raises(PoolError, match="more than 100 bytes; raise --max-bytes"):
        pool.import_archive(archive, max_bytes=100)
    with pytest.raises(PoolError, match="more than 2 files; raise --max-files"):
        pool.import_archive(archive, max_files=2)
    monkeypatch.setattr(archive_module, "RATIO_FLOOR", 1024)
    bomb = make_tar(
        tmp_path / "bomb.tar.gz", [*members, file_member("entries/vocab/z/zeros.bin", bytes(4 << 20))]
    )
    assert bomb.stat().st_size < 64 * 1024
    with pytest.raises(PoolError, match="decompression bomb"):
        pool.import_archive(bomb)
    assert_untouched(world, before, pool)


def test_not_an_archive_is_one_line(world, tmp_path):
    pool, _, _ = world
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + os.urandom(200))
    with pytest.raises(PoolError, match="cannot read pool archive"):
        pool.import_archive(junk)
    with pytest.raises(PoolError, match="does not exist"):
        pool.import_archive(tmp_path / "missing.tar.gz")


# ------------------------------------------------------------------------------------ killed imports
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from taskscout.pool import store
    from taskscout.pool.store import Pool

    stage_point = sys.argv[3]
    real_replace, real_copy = os.replace, store.shutil.copyfileobj
    calls = {"replace": 0}

    def replace(src, dst):
        real_replace(src, dst)
        if stage_point == "publish" and "/new/" not in str(dst) and "entries" in str(dst):
            calls["replace"] += 1
            if calls["replace"] == 1:  # the first entry is in, the second is not, the index is old
                os.kill(os.getpid(), signal.SIGKILL)

    def copy(source, sink, length=0):
        real_copy(source, sink, length)
        if stage_point == "unpack":
            os.kill(os.getpid(), signal.SIGKILL)

    store.os.replace = replace
    store.shutil.copyfileobj = copy
    Pool(sys.argv[1]).import_archive(sys.argv[2], overwrite=True)
    """
)


def _killed_import(pool: Pool, archive: Path, point: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(pool.path), str(archive), point], env=env, capture_output=True
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]


def test_import_killed_while_unpacking_leaves_nothing(world, tmp_path):
    pool, _, _ = world
    before = visible(pool)
    archive = exported(world, tmp_path)
    _killed_import(pool, archive, "unpack")
    assert visible(pool) == before
    assert any((pool.path / ".staging").iterdir())  # the crashed staging is there ...
    pool.recover()  # ... until the next writer cleans it
    assert list((pool.path / ".staging").iterdir()) == []
    assert_untouched(world, before, pool)


def test_import_killed_while_publishing_is_rolled_forward(world, tmp_path):
    pool, outside, outside_before = world
    changed = tmp_path / "changed.npy"
    np.save(changed, np.arange(5, dtype=np.uint64))
    source = Pool.create(tmp_path / "source")
    for name in ("src_a", "src_b"):
        source.add_entry("vocab", name, {"vocab.npy": changed}, {**META, "num_examples": 7})
    archive = source.export(tmp_path / "new.tar.gz")
    _killed_import(pool, archive, "publish")
    # Killed after moving one entry in: the next writer (here `recover`) finishes the import.
    assert pool.recover() == ["vocab/src_a", "vocab/src_b"]
    assert visible(pool) == visible(source)
    assert pool.verify().clean
    assert list((pool.path / ".staging").iterdir()) == []
    assert snapshot(outside) == outside_before


# ------------------------------------------------------------------------------------ crafted pools
def test_crafted_index_rows_cannot_reach_outside(world):
    pool, outside, outside_before = world
    index = json.loads((pool.path / "index.json").read_text())
    good = index["entries"][0]
    index["entries"] += [
        {**good, "kind": "../../outside", "source": "precious.txt"},
        {**good, "kind": "vocab", "source": str(outside)},
        {**good, "source": None},
        "not a row",
    ]
    (pool.path / "index.json").write_text(json.dumps(index))
    assert len(pool.entries()) == 2
    assert len(pool.problems) == 4
    assert all("invalid" in why or "JSON object" in why for why in pool.problems.values())
    with pytest.raises(PoolError, match="no entry"):
        pool.remove("precious.txt")
    with pytest.raises(PoolError, match="no entry"):
        pool.remove(str(outside))
    assert snapshot(outside) == outside_before


def test_linked_kind_directory_is_never_written_through(world, tmp_path):
    pool, outside, outside_before = world
    (pool.path / "entries" / "esm").symlink_to(outside, target_is_directory=True)
    data = tmp_path / "v.npy"
    np.save(data, np.arange(3, dtype=np.uint64))
    with pytest.raises(PoolError, match="link or leads outside the pool"):
        pool.add_entry("esm", "precious.txt", {"vocab.npy": data}, META)
    assert snapshot(outside) == outside_before
    report = pool.verify()
    assert report.clean  # the link is not part of the entry layout: not read, not followed


@pytest.mark.parametrize(
    ("content", "match"),
    [("[]", "verify --repair"), ('{"format_version": 2, "entries": {}}', "verify --repair"), ("{", "JSON")],
)
def test_damaged_index_is_one_line_and_repairable(world, content, match):
    pool, _, _ = world
    before = visible(pool)
    (pool.path / "index.json").write_text(content)
    with pytest.raises(PoolError, match=match):
        pool.entries()
    report = pool.verify(repair=True)
    assert report.repaired and sorted(report.ok) == sorted(before)
    assert visible(pool) == before


@pytest.mark.parametrize("content", ["[]", '"x"', '{"format": "taskscout-pool", "format_version": 99}'])
def test_bad_pool_json_is_one_line(tmp_path, content):
    (tmp_path / "pool.json").write_text(content)
    with pytest.raises(PoolError) as caught:
        Pool(tmp_path)
    assert "\n" not in str(caught.value)


def test_builtin_pool_is_read_only():
    builtin = Pool(default_pool_path())
    before = snapshot(default_pool_path())
    assert builtin.read_only
    for attempt in (
        lambda: builtin.remove("bbc_topic"),
        lambda: builtin.import_archive(default_pool_path() / "pool.json"),
        lambda: builtin.update_info(description="x"),
        lambda: builtin.verify(repair=True),
        lambda: Pool.create(default_pool_path()),
    ):
        with pytest.raises(PoolError, match="built-in pool, which is read-only"):
            attempt()
    assert builtin.verify().clean
    assert snapshot(default_pool_path()) == before


def test_names_are_single_safe_components(world, tmp_path):
    pool, _, _ = world
    data = tmp_path / "v.npy"
    np.save(data, np.arange(3, dtype=np.uint64))
    for kind, source in (("..", "x"), ("vocab", "../x"), ("vocab", ".hidden"), ("vocab", "a b"), ("", "x")):
        with pytest.raises(TaskscoutError, match="invalid"):
            pool.add_entry(kind, source, {"vocab.npy": data}, META)
    with pytest.raises(PoolError, match="invalid file name"):
        pool.add_entry("vocab", "ok", {"../evil": data}, META)


def test_version_1_pool_is_migrated(tmp_path):
    """A pool written by format 1 (flat index rows, no config checksum) opens as format 2."""
    root = tmp_path / "v1"
    entry = root / "entries" / "esm" / "old"
    entry.mkdir(parents=True)
    data = b"weights"
    meta = {**META, "esm_embedding_dim": 32, "files": {"esm.safetensors": hashlib.sha256(data).hexdigest()}}
    (entry / "esm.safetensors").write_bytes(data)
    (entry / "config.json").write_text(json.dumps(meta))
    (root / "pool.json").write_text(pool_json(1).decode())
    (root / "index.json").write_text(json.dumps({"entries": [{"kind": "esm", "source": "old", **meta}]}))
    pool = Pool(root)
    assert pool.info["format_version"] == 2
    [migrated] = pool.entries()
    assert migrated.meta["base_model_dim"] == 32 and migrated.config_sha256
    assert pool.verify().clean


def test_recover_never_touches_a_running_writers_staging(world):
    pool, _, _ = world
    with pool.staging("build") as live:
        (live / "partial.bin").write_bytes(b"in progress")
        assert Pool(pool.path).recover() == []  # another writer's cleanup
        assert (live / "partial.bin").exists()
    assert list((pool.path / ".staging").iterdir()) == []
