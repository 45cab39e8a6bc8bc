"""The Hugging Face Hub as a source of pool entries (``huggingface_hub``).

* ``hub:USER/REPO[@REVISION]`` names one hfselect ESM repo; :func:`download_esm` fetches only its
  ``config.json`` and ``model.safetensors`` (never a pickle) into the Hugging Face cache, pinned to the
  commit the revision resolves to; :mod:`taskscout.pool.hfselect` validates and adds it.
* :func:`search_hub` lists ESM repos for a base model by hfselect's tags (``embedding_space_map``,
  ``base_model:<id>``).
* :func:`push_pool` uploads a whole taskscout pool (``pool.json``, ``index.json``, ``entries/``) to a repo;
  :func:`pull_pool` downloads one at a pinned commit and adds its entries through the pool-archive
  import, which checks every file against the pool's checksums before anything is added.

Everything works from the local Hugging Face cache when ``HF_HUB_OFFLINE=1``; without the cache or the
network, each function fails with one line naming the repo.
"""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskscout.errors import PoolError
from taskscout.pool.hfselect import HFSELECT_CONFIG, HFSELECT_WEIGHTS
from taskscout.pool.store import Pool

HUB_PREFIX = "hub:"
ESM_TAG = "embedding_space_map"
POOL_TAG = "taskscout-pool"
POOL_FILES = ["pool.json", "index.json", "entries/**"]
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


def is_hub_spec(value: str) -> bool:
    return value.startswith(HUB_PREFIX)


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``hub:USER/REPO[@REVISION]`` (the prefix optional) -> ``(repo_id, revision or None)``."""
    body = spec.removeprefix(HUB_PREFIX).strip()
    repo, _, revision = body.partition("@")
    if not _REPO.match(repo) or ".." in repo:
        raise PoolError(f"{spec!r} is not a Hub repo id; write hub:USER/REPO or hub:USER/REPO@REVISION")
    if revision and (not _REVISION.match(revision) or ".." in revision):
        raise PoolError(f"{spec!r}: revision {revision!r} is not a branch, tag or commit sha")
    return repo, revision or None


def offline() -> bool:
    """Whether the user asked for no network (read at call time, unlike ``huggingface_hub.constants``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cache_dir() -> str | None:
    """The Hugging Face cache the user's environment names now (None: the library's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def _hub_error(exc: Exception, what: str) -> PoolError:
    """One line for anything ``huggingface_hub`` (or the network under it) raised."""
    from huggingface_hub import errors

    if isinstance(exc, errors.RevisionNotFoundError):
        return PoolError(f"{what}: no such revision on the Hub; check the branch, tag or commit")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return PoolError(f"{what}: no such repo on the Hub (or it is private: log in with `hf auth login`)")
    if isinstance(exc, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return PoolError(
            f"{what}: not in the local Hugging Face cache and the Hub cannot be reached "
            f"({'HF_HUB_OFFLINE=1' if offline() else 'no network'}); download it where the Hub is reachable"
        )
    if isinstance(exc, errors.GatedRepoError):
        return PoolError(f"{what}: a gated repo; accept its terms on the Hub and log in")
    if isinstance(exc, errors.HfHubHTTPError):
        return PoolError(f"{what}: the Hub refused the request ({str(exc).splitlines()[0][:160]})")
    text = str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return PoolError(f"{what}: cannot reach the Hub ({text}); check the network or set HF_HUB_OFFLINE=1")


@dataclass
class Snapshot:
    """A repo's files at one commit in the local Hugging Face cache."""

    repo_id: str
    revision: str  # the commit sha the requested revision resolved to
    path: Path


def download(repo_id: str, revision: str | None, allow_patterns: list[str], what: str) -> Snapshot:
    """``snapshot_download`` of the files matching ``allow_patterns``; offline when ``HF_HUB_OFFLINE=1``."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=_cache_dir(),
                allow_patterns=allow_patterns,
                local_files_only=offline(),
            )
        )
    except Exception as exc:  # huggingface_hub and its HTTP client raise many error types
        raise _hub_error(exc, what) from None
    sha = path.name  # the cache keeps every snapshot under snapshots/<commit sha>
    if not _SHA.match(sha):
        raise PoolError(f"{what}: the Hugging Face cache returned {path}, not a commit snapshot")
    if revision and _SHA.match(revision) and revision != sha:
        raise PoolError(f"{what}: asked for commit {revision} but the cache gave {sha}")
    return Snapshot(repo_id, sha, path)


def download_esm(spec: str) -> Snapshot:
    """Fetch one hfselect ESM repo (``hub:USER/REPO[@REV]``): its config and safetensors only."""
    repo_id, revision = parse_hub_spec(spec)
    return download(repo_id, revision, [HFSELECT_CONFIG, HFSELECT_WEIGHTS], f"hub:{repo_id}")


def read_hub_esm(spec: str, *, name: str | None = None, task_type: str = ""):
    """An hfselect ESM from the Hub, read and validated like a directory (see ``read_hfselect_dir``)."""
    from taskscout.pool.hfselect import read_hfselect_dir

    snapshot = download_esm(spec)
    where = f"hub:{snapshot.repo_id}@{snapshot.revision[:12]}"
    if not (snapshot.path / HFSELECT_CONFIG).is_file() and not (snapshot.path / HFSELECT_WEIGHTS).is_file():
        raise PoolError(f"{where}: has no config.json or model.safetensors; it is not an hfselect ESM repo")
    esm = read_hfselect_dir(
        snapshot.path,
        where=where,
        name=name,
        task_type=task_type,
        origin=f"hub:{snapshot.repo_id}",
        revision=snapshot.revision,
    )
    return esm, where


# ---------------------------------------------------------------------------------------------- search
@dataclass
class HubESM:
    repo_id: str
    downloads: int | None
    last_modified: str | None
    tags: list[str]


def search_hub(
    base_model: str, *, search: str | None = None, limit: int | None = 100, api: Any = None
) -> list[HubESM]:
    """ESM repos on the Hub for ``base_model`` (hfselect's tags), optionally filtered by a name substring."""
    from huggingface_hub import HfApi

    what = f"searching the Hub for ESMs of {base_model}"
    if offline():
        raise PoolError(f"{what}: HF_HUB_OFFLINE=1; the Hub's search needs the network")
    api = api or HfApi()
    try:
        found = api.list_models(filter=[ESM_TAG, f"base_model:{base_model}"], search=search, limit=limit)
        return [
            HubESM(
                repo_id=model.id,
                downloads=getattr(model, "downloads", None),
                last_modified=str(getattr(model, "last_modified", None) or "") or None,
                tags=list(getattr(model, "tags", None) or []),
            )
            for model in found
        ]
    except PoolError:
        raise
    except Exception as exc:
        raise _hub_error(exc, what) from None


# ---------------------------------------------------------------------------------------------- whole pools
def push_pool(
    pool: Pool,
    spec: str,
    *,
    private: bool | None = None,
    message: str | None = None,
    api: Any = None,
) -> str:
    """Upload ``pool`` (verified first) to the Hub repo ``spec``; returns the commit sha it created."""
    from huggingface_hub import HfApi

    repo_id, revision = parse_hub_spec(spec)
    what = f"hub:{repo_id}"
    report = pool.verify()
    if not report.clean:
        name, why = next(iter({**report.broken, **report.unindexed}.items()))
        raise PoolError(f"pool {pool.path} does not verify ({name}: {why}); fix it before pushing")
    if offline():
        raise PoolError(f"{what}: HF_HUB_OFFLINE=1; pushing needs the network")
    api = api or HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(pool.path),
            revision=revision,
            allow_patterns=POOL_FILES,
            delete_patterns=["entries/**"],  # the repo holds exactly this pool's entries afterwards
            commit_message=message or f"taskscout pool: {len(report.ok)} entries",
        )
    except Exception as exc:
        raise _hub_error(exc, what) from None
    sha = getattr(commit, "oid", None)
    if not isinstance(sha, str):
        raise PoolError(f"{what}: the Hub did not report the commit it created")
    return sha


def pull_pool(
    pool: Pool,
    spec: str,
    *,
    overwrite: bool = False,
    **limits: Any,
) -> tuple[list[str], str]:
    """Add the entries of the taskscout pool in Hub repo ``spec`` at a pinned commit, all or nothing.

    The snapshot is packed into an archive and imported with :meth:`Pool.import_archive`, so the same
    checks apply as to any shared pool (layout, sizes, every file against its checksum). The repo and
    commit are recorded in ``pool.json`` (``hub_pulls``). Returns the entries added and the commit sha.
    """
    pool._require_writable()
    repo_id, revision = parse_hub_spec(spec)
    what = f"hub:{repo_id}"
    snapshot = download(repo_id, revision, POOL_FILES, what)
    if not (snapshot.path / "pool.json").is_file() or not (snapshot.path / "index.json").is_file():
        raise PoolError(
            f"{what}@{snapshot.revision[:12]}: has no pool.json / index.json; not a taskscout pool"
        )
    cache_root = snapshot.path.parent.parent.resolve()  # models--USER--REPO: snapshots link into its blobs
    with tempfile.TemporaryDirectory(prefix="hub-pull-") as tmp:
        archive = Path(tmp) / "pool.tar"
        try:
            with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
                for file in sorted(snapshot.path.rglob("*")):
                    name = file.relative_to(snapshot.path).as_posix()
                    if file.is_dir() or not (name in POOL_FILES or name.startswith("entries/")):
                        continue  # a repo's README.md, .gitattributes, ...: not part of the pool
                    real = file.resolve()
                    if not real.is_file() or not real.is_relative_to(cache_root):
                        raise PoolError(f"{what}: {file.relative_to(snapshot.path)} leads outside the cache")
                    info = tarfile.TarInfo(name)
                    info.size = real.stat().st_size
                    info.mode = 0o644
                    with real.open("rb") as handle:
                        tar.addfile(info, handle)
        except OSError as exc:
            raise PoolError(f"{what}: cannot read the downloaded snapshot ({exc.strerror or exc})") from None
        try:
            added = pool.import_archive(archive, overwrite=overwrite, **limits)
        except PoolError as exc:
            raise PoolError(f"{what}@{snapshot.revision[:12]}: {exc}") from None
    pulls = list(pool.info.get("hub_pulls") or [])
    pulls.append({"repo": repo_id, "revision": snapshot.revision, "entries": added})
    pool.update_info(hub_pulls=pulls)
    return added, snapshot.revision
