"""The Hub as a pool, offline: a Hugging Face cache laid out by the test (read by the real
``snapshot_download(local_files_only=True)``) and ``HfApi`` mocked at its boundary for search and push."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from safetensors.numpy import save_file

from taskscout.errors import PoolError
from taskscout.pool.hub import parse_hub_spec, pull_pool, push_pool, search_hub
from taskscout.pool.sources import add_hfselect
from taskscout.pool.store import Pool
from tests.test_cli import run

FIXTURES = Path(__file__).parent / "fixtures" / "hfselect"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def cache_repo(cache: Path, repo_id: str, files: dict[str, bytes], *, branch: str = "main") -> str:
    """Lay out ``files`` as the Hugging Face cache stores a downloaded snapshot; returns its commit sha."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    sha = hashlib.sha1(f"{repo_id} {sorted(files)} {branch}".encode()).hexdigest()
    snapshot = repo / "snapshots" / sha
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * (len(Path(name).parts) + 1)) / "blobs" / blob.name)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / branch).write_text(sha)
    return sha


def esm_files(name: str) -> dict[str, bytes]:
    return {f: (FIXTURES / name / f).read_bytes() for f in ("config.json", "model.safetensors")}


def test_parse_hub_spec():
    assert parse_hub_spec("hub:user/ESM_glue_sst2") == ("user/ESM_glue_sst2", None)
    assert parse_hub_spec("hub:user/repo@v1.0") == ("user/repo", "v1.0")
    for bad in ("hub:repo", "hub:a/b/c", "hub:../x/y", "hub:user/repo@", "hub:user/repo@a..b", "hub:/x"):
        if bad.endswith("@"):
            assert parse_hub_spec(bad) == ("user/repo", None)
            continue
        with pytest.raises(PoolError, match=r"not a Hub repo id|not a branch"):
            parse_hub_spec(bad)


def test_add_from_the_cache_pins_the_commit(hf_cache, tmp_path, monkeypatch, capsys):
    sha = cache_repo(hf_cache, "esm-user/ESM_stanfordnlp__imdb_plain_text", esm_files("imdb-random"))
    pool = tmp_path / "pool"
    code, out, err = run(
        monkeypatch,
        capsys,
        "pool",
        "add",
        "hub:esm-user/ESM_stanfordnlp__imdb_plain_text",
        "--pool",
        str(pool),
    )
    assert code == 0, err
    entry = Pool(pool).get("esm", "stanfordnlp__imdb_plain_text")
    assert entry.meta["origin"] == "hub:esm-user/ESM_stanfordnlp__imdb_plain_text"
    assert entry.meta["origin_revision"] == sha and sha in out.replace("\n", "")
    local = add_hfselect(Pool.create(tmp_path / "other"), [str(FIXTURES / "imdb-random")])[0]
    assert entry.meta["files"] == local.meta["files"]  # the same weights, byte for byte
    # A pinned commit reads the same snapshot.
    again = add_hfselect(Pool(pool), [f"hub:esm-user/ESM_stanfordnlp__imdb_plain_text@{sha}"], overwrite=True)
    assert again[0].meta["origin_revision"] == sha


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hub:esm-user/not-cached", "not in the local Hugging Face cache and the Hub cannot be reached"),
        ("hub:esm-user/readme-only", "is not an hfselect ESM"),
        ("hub:esm-user/pickle-only", "pytorch_model.bin, a pickle"),
        ("hub:esm-user/renamed", "expected exactly model.weight/bias"),
        ("hub:esm-user/good@other-branch", "not in the local Hugging Face cache"),
        ("hub:esm-user", "not a Hub repo id"),
    ],
)
def test_bad_hub_repos_give_one_line_and_add_nothing(hf_cache, tmp_path, monkeypatch, capsys, spec, expected):
    cache_repo(hf_cache, "esm-user/good", esm_files("sst2-fitted"))
    cache_repo(hf_cache, "esm-user/readme-only", {"README.md": b"# a model\n"})
    config = (FIXTURES / "imdb-random" / "config.json").read_bytes()
    cache_repo(hf_cache, "esm-user/pickle-only", {"config.json": config, "pytorch_model.bin": b"\x80\x04..."})
    renamed = tmp_path / "renamed.safetensors"
    save_file({"w": np.zeros((384, 384), np.float32), "b": np.zeros(384, np.float32)}, str(renamed))
    cache_repo(
        hf_cache, "esm-user/renamed", {"config.json": config, "model.safetensors": renamed.read_bytes()}
    )
    pool = tmp_path / "pool"
    code, _, err = run(monkeypatch, capsys, "pool", "add", "hub:esm-user/good", spec, "--pool", str(pool))
    assert code != 0 and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert spec.split("@")[0].removeprefix("hub:") in err
    assert Pool(pool).entries() == []


# ---------------------------------------------------------------------------------------------- search
def test_search_hub_asks_for_hfselect_tags(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    calls = []

    class FakeApi:
        def list_models(self, **kwargs):
            calls.append(kwargs)
            return iter([SimpleNamespace(id="u/ESM_glue_sst2", downloads=3, last_modified=None, tags=["x"])])

    found = search_hub("bert-base-multilingual-uncased", search="glue", api=FakeApi())
    assert calls == [
        {
            "filter": ["embedding_space_map", "base_model:bert-base-multilingual-uncased"],
            "search": "glue",
            "limit": 100,
        }
    ]
    assert [f.repo_id for f in found] == ["u/ESM_glue_sst2"] and found[0].downloads == 3


def test_search_hub_errors_are_one_line(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "pool", "search-hub", "--base-model", "bert-base-uncased")
    assert code != 0 and "HF_HUB_OFFLINE=1" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    class Unreachable:
        def list_models(self, **kwargs):
            raise ConnectionError("Name or service not known")

    with pytest.raises(PoolError, match=r"cannot reach the Hub \(Name or service not known\)"):
        search_hub("bert-base-uncased", api=Unreachable())


# ---------------------------------------------------------------------------------------------- push / pull
def small_pool(tmp_path: Path) -> Pool:
    pool = Pool.create(tmp_path / "pool", description="shared")
    add_hfselect(pool, [str(FIXTURES / "imdb-random"), str(FIXTURES / "sst2-fitted")])
    return pool


def test_push_uploads_the_verified_pool(tmp_path, monkeypatch):
    pool = small_pool(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))
            return SimpleNamespace(oid="a" * 40)

    assert push_pool(pool, "me/my-pool", api=FakeApi()) == "a" * 40
    assert calls[0] == ("create_repo", "me/my-pool", {"private": None, "exist_ok": True})
    upload = calls[1][1]
    assert upload["repo_id"] == "me/my-pool" and upload["folder_path"] == str(pool.path)
    assert upload["allow_patterns"] == ["pool.json", "index.json", "entries/**"]
    # A pool that does not verify is never pushed.
    entry = pool.entries()[0]
    (entry.path / "esm.safetensors").write_bytes(b"tampered")
    calls.clear()
    with pytest.raises(PoolError, match="does not verify"):
        push_pool(pool, "me/my-pool", api=FakeApi())
    assert calls == []


def test_push_offline_is_one_line(tmp_path, monkeypatch, capsys):
    pool = small_pool(tmp_path)
    code, _, err = run(monkeypatch, capsys, "pool", "push", "me/my-pool", "--pool", str(pool.path))
    assert code != 0 and "hub:me/my-pool: HF_HUB_OFFLINE=1" in err and len(err.strip().splitlines()) == 1


def pool_files(pool: Pool) -> dict[str, bytes]:
    files = {
        "pool.json": (pool.path / "pool.json").read_bytes(),
        "index.json": (pool.path / "index.json").read_bytes(),
    }
    for file in sorted((pool.path / "entries").rglob("*")):
        if file.is_file():
            files[file.relative_to(pool.path).as_posix()] = file.read_bytes()
    return files


def test_pull_verifies_and_pins(hf_cache, tmp_path, monkeypatch, capsys):
    shared = small_pool(tmp_path)
    repo_files = {
        **pool_files(shared),
        "README.md": b"---\ntags: [taskscout-pool]\n---\n",
        ".gitattributes": b"",
    }
    sha = cache_repo(hf_cache, "team/esm-pool", repo_files)  # a Hub repo also holds README.md etc.
    mine = tmp_path / "mine"
    code, out, err = run(monkeypatch, capsys, "pool", "pull", "team/esm-pool", "--pool", str(mine))
    assert code == 0, err
    assert f"imported 2 entries from hub:team/esm-pool@{sha}" in out.replace("\n", "")
    pulled = Pool(mine)
    assert sorted(e.source for e in pulled.entries()) == ["imdb-random", "sst2-fitted"]
    assert pulled.verify().clean
    assert pulled.info["hub_pulls"] == [
        {"repo": "team/esm-pool", "revision": sha, "entries": ["esm/imdb-random", "esm/sst2-fitted"]}
    ]


def test_pull_refuses_tampered_files_and_non_pools(hf_cache, tmp_path):
    shared = small_pool(tmp_path)
    files = pool_files(shared)
    name = next(k for k in files if k.endswith("esm.safetensors"))
    files[name] = files[name][:-4] + b"\x00\x00\x00\x00"
    cache_repo(hf_cache, "team/tampered", files)
    sha = cache_repo(hf_cache, "team/escape", pool_files(shared))
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of any pool")
    snapshot = hf_cache / "models--team--escape" / "snapshots" / sha
    (snapshot / "entries" / "esm" / "imdb-random" / "extra.txt").symlink_to(outside)
    cache_repo(hf_cache, "team/not-a-pool", {"README.md": b"hi"})
    mine = Pool.create(tmp_path / "mine")
    with pytest.raises(PoolError, match=r"hub:team/tampered@[0-9a-f]{12}: .*checksum"):
        pull_pool(mine, "team/tampered")
    with pytest.raises(PoolError, match="not a taskscout pool"):
        pull_pool(mine, "team/not-a-pool")
    with pytest.raises(PoolError, match="not in the local Hugging Face cache"):
        pull_pool(mine, "team/never-downloaded")
    with pytest.raises(PoolError, match=r"hub:team/escape: entries/esm/imdb-random/extra\.txt leads outside"):
        pull_pool(mine, "team/escape")
    assert mine.entries() == [] and "hub_pulls" not in mine.info


def test_pushed_layout_is_what_pull_reads(tmp_path, hf_cache):
    """push uploads exactly POOL_FILES from the pool directory; a cache holding those files pulls."""
    shared = small_pool(tmp_path)
    (shared.path / ".lock").write_text("")  # never uploaded (not in the allowed patterns)
    files = pool_files(shared)
    assert not any(name.startswith(".") for name in files)
    cache_repo(hf_cache, "team/p", files)
    added, _ = pull_pool(Pool.create(tmp_path / "again"), "team/p")
    assert added == ["esm/imdb-random", "esm/sst2-fitted"]
    index = json.loads(files["index.json"])
    assert len(index["entries"]) == 2
