"""P1 for ESM-LogME: turn source tasks into pool entries.

For each source: fine-tune the base encoder on a capped, stratified sample (cached, so transfer
experiments reuse it), embed a sample of the source's texts with the base and the fine-tuned encoder,
fit the ESM, and add the entry to the pool atomically. Finished entries are skipped, so an interrupted
build continues where it stopped; a source that fails is reported and the build goes on.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import taskscout
from taskscout.cluster import RayOptions
from taskscout.data.dedup import text_hashes
from taskscout.data.task import Task
from taskscout.devices import resolve_device
from taskscout.encode.models import resolve_model
from taskscout.errors import TaskscoutError
from taskscout.methods.base import SelectionMethod
from taskscout.pool.config import BuildConfig
from taskscout.pool.context import BuildContext
from taskscout.pool.schema import entry_name
from taskscout.pool.store import TEXT_HASHES, Pool


@dataclass
class BuildResult:
    source: str
    status: str  # "built", "skipped", "failed"
    seconds: float = 0.0
    message: str = ""


def source_metadata(task: Task, config: BuildConfig) -> dict[str, Any]:
    """Metadata every pool entry carries, whatever its kind: the task and the base model it was built for."""
    resolved = resolve_model(config.model)
    return {
        "base_model_name": resolved.name,
        "base_model_fingerprint": resolved.fingerprint,
        "base_model_pooling": config.train.pooling,
        "base_model_max_length": config.train.max_length,
        "task_id": task.name,
        "task_type": task.task_type,
        "num_classes": task.num_classes,
        "num_examples": len(task),
        "num_train_rows": min(len(task), config.max_train_rows),
        "language": task.language,
        "label_names": task.label_names,
        "provenance": task.provenance.to_dict(),
        "licence": task.licence,
        "task_fingerprint": task.fingerprint(),
        "version": taskscout.__version__,
    }


def build_entry(
    pool: Pool,
    method: SelectionMethod,
    task: Task,
    context: BuildContext,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``method``'s P1 step for one source and add the result to ``pool``; returns the entry's metadata.

    The method writes its files and a ``config.json`` into a staging directory of the pool; the shared
    metadata and the text hashes used for duplicate detection are added here, then the entry is added with
    :meth:`Pool.add_entry` (checksummed, validated, published atomically).
    """
    with pool.staging("build") as stage:
        staged = stage / "entry"
        staged.mkdir()
        meta = stage_entry(method, task, context, staged, progress=progress)
        files = {f.name: f for f in sorted(staged.iterdir()) if f.name != "config.json"}
        entry = pool.add_entry(method.kind or method.name, entry_name(task.name), files, meta)
    return entry.meta


def stage_entry(
    method: SelectionMethod, task: Task, context: BuildContext, staged: Path, *, progress: bool = False
) -> dict[str, Any]:
    """Run ``method``'s P1 step for ``task`` into the empty directory ``staged``; returns the metadata.

    ``staged`` then holds the method's files and the text hashes used for duplicate detection; the
    metadata is the shared source metadata plus the method's own ``config.json``.
    """
    config = context.config
    method.build(task, context, staged, progress=progress)
    hash_sample = task.subsample(config.max_hash_texts, seed=config.seed, stratify=False)
    np.save(staged / TEXT_HASHES, text_hashes(hash_sample.texts, hash_sample.text_pairs), allow_pickle=False)
    config_file = staged / "config.json"
    own = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    return {
        **source_metadata(task, config),
        "base_model_dim": context.base_encoder.dim,
        "build_device": str(context.base_encoder.device),
        **own,
        "hash_sample_fraction": len(hash_sample) / len(task),
    }


def build_pool(
    pool: Pool,
    sources: Iterable[str | Task],
    config: BuildConfig | None = None,
    *,
    methods: Iterable[str] = ("esm-logme",),
    force: bool = False,
    load_task: Callable[[str], Task] | None = None,
    on_result: Callable[[BuildResult], None] | None = None,
    progress: bool = True,
    device: str = "auto",
    ray: RayOptions | None = None,
    trained_only: bool = False,
) -> list[BuildResult]:
    """Build the pool entries of ``methods`` for ``sources`` (task names resolved by ``load_task``, or Tasks).

    Existing entries are skipped unless ``force``; a failing source is recorded and the build continues.
    ``trained_only``: build only the sources whose fine-tuned model is already cached on this machine
    (train nothing; the others are skipped), e.g. to add entries for the models a transfer job trained.
    ``device``: where fine-tuning, embedding and PEFT tuning run (``auto``, ``cpu``, ``cuda[:i]``, ``mps``;
    mixed precision on CUDA); recorded in each entry as ``build_device``. With ``ray``, each source's P1
    work runs as a Ray task (:func:`build_sources_ray`); the entries are the same.
    """
    from taskscout.methods import get_method

    config = config or BuildConfig()
    # One P1 step per entry kind: methods sharing a kind (the source-model family) share its entry.
    by_kind = {}
    for selector in (get_method(name) for name in methods):
        if selector.kind is not None:
            by_kind.setdefault(selector.kind, selector)
    selectors = list(by_kind.values())
    if load_task is None:
        from taskscout.data.loaders import load_task as load_any

        def load_task(name: str) -> Task:
            # A bare name is a catalog task unless it is an existing file or directory.
            return load_any(name if ":" in name or Path(name).exists() else f"catalog:{name}")

    resolve_device(device)  # a device this machine lacks is one error before any work, not one per source
    context = BuildContext(config, device=device)
    # Record the configuration up front, so a pool whose build is interrupted still says how it was built.
    pool.update_info(build={**pool.info.get("build", {}), "config": config.to_dict()})

    def build_one(source: str | Task) -> BuildResult:
        started = time.perf_counter()
        task = source if isinstance(source, Task) else None
        name = source.name if isinstance(source, Task) else str(source).removeprefix("catalog:")
        try:
            if task is None and Path(name).exists():
                # A user's file: its entry is named by the loader (the file stem), so load it first.
                task = load_task(name)
                name = task.name
            todo = [m for m in selectors if force or not pool.has(m.kind, entry_name(name))]
            if not todo:
                return BuildResult(name, "skipped", message="already in the pool")
            task = task if task is not None else load_task(str(source))
            for selector in todo:
                build_entry(pool, selector, task, context, progress=progress)
            return BuildResult(name, "built", time.perf_counter() - started)
        except TaskscoutError as exc:
            return BuildResult(name, "failed", time.perf_counter() - started, str(exc))
        except Exception as exc:  # one bad source must not end a multi-hour build
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return BuildResult(name, "failed", time.perf_counter() - started, last)

    results: list[BuildResult] = []
    if trained_only:
        # Loaded once here and passed on as Tasks, so build_one does not read them again.
        kept: list[str | Task] = []
        for source in sources:
            try:
                task = source if isinstance(source, Task) else load_task(str(source))
            except Exception:
                kept.append(source)  # build_one reports why it cannot be loaded
                continue
            if context.has_source_model(task):
                kept.append(task)
            else:
                results.append(
                    BuildResult(task.name, "skipped", message="no fine-tuned model on this machine")
                )
                if on_result is not None:
                    on_result(results[-1])
        sources = kept
    if ray is not None:
        results += build_sources_ray(
            pool,
            list(sources),
            context,
            selectors,
            ray,
            force=force,
            load_task=load_task,
            on_result=on_result,
        )
    else:
        for source in sources:
            results.append(build_one(source))
            if on_result is not None:
                on_result(results[-1])
    built = [r for r in results if r.status == "built"]
    if built:
        history = list(pool.info.get("build", {}).get("history", []))
        history.append(
            {
                "config": config.to_dict(),
                "methods": [m.name for m in selectors],
                "built": [r.source for r in built],
                "seconds": round(sum(r.seconds for r in built), 1),
                "device": str(resolve_device(device)),
                "taskscout": taskscout.__version__,
            }
        )
        pool.update_info(build={"config": config.to_dict(), "history": history})
    return results


# ------------------------------------------------------------------------------------------------ Ray


@dataclass(frozen=True)
class StagedEntry:
    """One entry built by a Ray task, shipped to the driver: its files' bytes and sha256, and metadata."""

    kind: str
    name: str
    files: dict[str, tuple[bytes, str]]  # file name -> (content, sha256 computed where it was built)
    meta: dict[str, Any]


def build_sources_ray(
    pool: Pool,
    sources: list[str | Task],
    context: BuildContext,
    selectors: list[SelectionMethod],
    options: RayOptions,
    *,
    force: bool = False,
    load_task: Callable[[str], Task],
    on_result: Callable[[BuildResult], None] | None = None,
) -> list[BuildResult]:
    """Each source's P1 work (fine-tuning, embedding, fitting) as one Ray task; the driver writes.

    The driver loads the sources (workers need no data of their own), skips entries already in the pool
    (so an interrupted build resumes), sends one task per source with the methods still to build, and
    adds each returned entry through :meth:`Pool.add_entry` (staged, checksums verified against the ones
    computed by the worker, published atomically) as the task finishes. A source that fails in its task
    is a ``failed`` result, as in a local build; a worker lost beyond its retries ends the build with
    one error (what was written stays).
    """
    from taskscout.cluster import completed, ray_session

    results: dict[int, BuildResult] = {}
    jobs: dict[int, tuple[str, Task, list[str]]] = {}
    for index, source in enumerate(sources):
        name = source.name if isinstance(source, Task) else str(source).removeprefix("catalog:")
        try:
            task = source if isinstance(source, Task) else None
            if task is None and Path(name).exists():
                task = load_task(name)
                name = task.name
            todo = [m.name for m in selectors if force or not pool.has(m.kind, entry_name(name))]
            if not todo:
                results[index] = BuildResult(name, "skipped", message="already in the pool")
                continue
            jobs[index] = (name, task if task is not None else load_task(str(source)), todo)
        except TaskscoutError as exc:
            results[index] = BuildResult(name, "failed", message=str(exc))
    for index in sorted(results):
        if on_result is not None:
            on_result(results[index])
    if not jobs:
        return [results[i] for i in sorted(results)]
    with ray_session(options) as ray:
        job = ray.remote(_ray_build_source).options(**options.task_options())
        config = ray.put(context.config)
        refs = {
            job.remote(task, config, todo, context.device): index for index, (_, task, todo) in jobs.items()
        }
        for index, (status, payload, seconds) in completed(ray, refs):
            name = jobs[index][0]
            if status == "built":
                try:
                    for staged in payload:
                        _publish_staged(pool, staged)
                    result = BuildResult(name, "built", seconds)
                except TaskscoutError as exc:
                    result = BuildResult(name, "failed", seconds, str(exc))
            else:
                result = BuildResult(name, "failed", seconds, str(payload))
            results[index] = result
            if on_result is not None:
                on_result(result)
    return [results[i] for i in sorted(results)]


def _publish_staged(pool: Pool, staged: StagedEntry) -> None:
    """Write a worker's entry into the pool: bytes checked against the worker's sha256, then added."""
    from taskscout.errors import PoolError
    from taskscout.io import sha256_bytes

    with pool.staging("ray") as stage:
        files = {}
        for file_name, (content, digest) in staged.files.items():
            if Path(file_name).name != file_name or file_name in ("", ".", ".."):
                raise PoolError(
                    f"Ray task for {staged.kind}/{staged.name} returned a bad file name {file_name!r}"
                )
            if sha256_bytes(content) != digest:
                raise PoolError(
                    f"{staged.kind}/{staged.name}: {file_name} was damaged on its way from the worker"
                )
            path = stage / file_name
            path.write_bytes(content)
            files[file_name] = path
        pool.add_entry(staged.kind, staged.name, files, staged.meta)


_WORKER_CONTEXTS: dict[str, BuildContext] = {}  # per worker process: the base encoder is loaded once


def _ray_build_source(
    task: Task, config: BuildConfig, methods: list[str], device: str
) -> tuple[str, Any, float]:
    """Ray task: the P1 entries of ``methods`` for one source, built in a private directory.

    Returns ``("built", [StagedEntry, ...], seconds)`` or ``("failed", message, seconds)``: a source that
    cannot be built is a result, not a failure of the job (Ray would retry it, and it would fail again).
    """
    import tempfile

    from taskscout.io import sha256_bytes
    from taskscout.methods import get_method

    started = time.perf_counter()
    key = json.dumps([config.to_dict(), device], sort_keys=True, default=str)
    context = _WORKER_CONTEXTS.setdefault(key, BuildContext(config, device=device))
    staged_entries = []
    try:
        for name in methods:
            method = get_method(name)
            with tempfile.TemporaryDirectory(prefix="taskscout-build-") as tmp:
                directory = Path(tmp)
                meta = stage_entry(method, task, context, directory, progress=False)
                files = {}
                for file in sorted(directory.iterdir()):
                    if file.name != "config.json":
                        content = file.read_bytes()
                        files[file.name] = (content, sha256_bytes(content))
            staged_entries.append(StagedEntry(method.kind or method.name, entry_name(task.name), files, meta))
    except TaskscoutError as exc:
        return "failed", str(exc), time.perf_counter() - started
    except Exception as exc:  # one bad source must not end a multi-hour build
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return "failed", last, time.perf_counter() - started
    return "built", staged_entries, time.perf_counter() - started
